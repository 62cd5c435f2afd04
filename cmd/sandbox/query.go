package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

func (st *Status) cluster(name string) (sandbox.Cluster, error) {
	var names []string
	for _, c := range st.Clusters {
		if c.Name == name || c.Context == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return sandbox.Cluster{}, fmt.Errorf("no cluster %q (the sandbox has %s)", name, strings.Join(names, ", "))
}

// flagsAnywhere parses fs from args with flags before, between or after the positional arguments.
func flagsAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// Lookup sends an A query for NAME to CLUSTER's CoreDNS and prints the answer.
func (d *Dir) Lookup(args []string) error {
	fs := flag.NewFlagSet("sandbox lookup", flag.ContinueOnError)
	tcp := fs.Bool("tcp", false, "query over TCP (default UDP)")
	pos, err := flagsAnywhere(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: sandbox lookup CLUSTER NAME [--tcp]")
	}
	_, c, err := d.statusOf(pos[0])
	if err != nil {
		return err
	}
	proto := "udp"
	if *tcp {
		proto = "tcp"
	}
	ips, err := testenv.LookupA(c.DNSAddr(), pos[1], *tcp)
	if err != nil {
		fmt.Printf("%s (%s, %s): %s -> %v\n", c.Name, c.DNSAddr(), proto, pos[1], answer(err))
		return quiet{err}
	}
	fmt.Printf("%s (%s, %s): %s -> %s\n", c.Name, c.DNSAddr(), proto, pos[1], joinAddrs(ips))
	return nil
}

func answer(err error) string {
	var rc *testenv.RcodeError
	if errors.As(err, &rc) {
		return strings.TrimPrefix(rc.Error(), "dns: "+rc.Name+": ")
	}
	return err.Error()
}

func joinAddrs[T fmt.Stringer](ips []T) string {
	if len(ips) == 0 {
		return "(no addresses)"
	}
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return strings.Join(s, " ")
}

// Verify checks every ordered pair (A, B): A's CoreDNS resolves B's sample Pod name to B's sample address.
func (d *Dir) Verify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox verify", flag.ContinueOnError)
	wait := fs.Duration("wait", 0, "retry failing pairs for up to this long (CoreDNS reloads its Corefile every ~2s)")
	if _, err := flagsAnywhere(fs, args); err != nil {
		return err
	}
	st, err := d.readStatus()
	if err != nil {
		return err
	}
	type result struct {
		from, of sandbox.Cluster
		got      string
		ok       bool
	}
	check := func(a, b sandbox.Cluster) result {
		r := result{from: a, of: b}
		ips, err := testenv.LookupA(a.DNSAddr(), b.SampleName(), false)
		switch {
		case err != nil:
			r.got = answer(err)
		default:
			r.got = joinAddrs(ips)
			r.ok = len(ips) == 1 && ips[0].String() == b.SampleIP
		}
		return r
	}
	start := time.Now()
	var results []result
	for {
		results = results[:0]
		failed, pending := 0, 0
		for _, a := range st.Clusters {
			for _, b := range st.Clusters {
				r := check(a, b)
				if !r.ok {
					failed++
					if a.Name == b.Name || d.forwards(a, b) {
						pending++ // CoreDNS may not have reloaded yet
					}
				}
				results = append(results, r)
			}
		}
		// Stop waiting when nothing can change: no Corefile forwards the failing names (after a moment for
		// the kubelet stand-in to copy a ConfigMap just written).
		if failed == 0 || time.Since(start) > *wait || ctx.Err() != nil || (pending == 0 && time.Since(start) > 2*time.Second) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM (CoreDNS)\tNAME\tANSWER\tWANT\t")
	var failed []result
	for _, r := range results {
		mark := "ok"
		if !r.ok {
			mark = "FAIL"
			failed = append(failed, r)
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%s\t%s\n", r.from.Name, r.from.DNSAddr(), r.of.SampleName(), r.got, r.of.SampleIP, mark)
	}
	tw.Flush()
	if len(failed) == 0 {
		fmt.Printf("\nall %d pairs resolve: every cluster's CoreDNS answers for every cluster's Pods\n", len(results))
		return nil
	}
	fmt.Printf("\n%d of %d pairs fail:\n", len(failed), len(results))
	for _, r := range failed {
		reason := ""
		if r.from.Name != r.of.Name {
			zone := r.of.Namespace + ".svc.cluster.local"
			if !d.forwards(r.from, r.of) {
				reason = fmt.Sprintf(": %s's coredns ConfigMap has no server block for %s (meshctl has not written DNS forwarding)", r.from.Name, zone)
			} else {
				reason = fmt.Sprintf(": %s's Corefile forwards %s, but the answer is wrong (see %s/logs/coredns-%s.log)", r.from.Name, zone, d.Path, r.from.Name)
			}
		}
		fmt.Printf("  %s cannot resolve %s's Pod%s\n", r.from.Name, r.of.Name, reason)
	}
	return quiet{fmt.Errorf("%d pairs fail", len(failed))}
}

// forwards reports whether a's CoreDNS has a server block for b's namespace (in the Corefile the kubelet
// stand-in rendered from a's ConfigMap).
func (d *Dir) forwards(a, b sandbox.Cluster) bool {
	corefile, _ := os.ReadFile(filepath.Join(d.Path, a.Name, "Corefile"))
	return strings.Contains(string(corefile), b.Namespace+".svc.cluster.local")
}

func (d *Dir) kubeClient(st *Status, c sandbox.Cluster) (kubernetes.Interface, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: st.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Corefile prints the cluster's coredns ConfigMap Corefile, or with --reset writes EKS's default Corefile
// back (what an EKS add-on update does), the drift meshd repairs.
func (d *Dir) Corefile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox corefile", flag.ContinueOnError)
	reset := fs.Bool("reset", false, "replace the Corefile with EKS's default (as an add-on update would)")
	pos, err := flagsAnywhere(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: sandbox corefile CLUSTER [--reset]")
	}
	st, c, err := d.statusOf(pos[0])
	if err != nil {
		return err
	}
	kc, err := d.kubeClient(st, c)
	if err != nil {
		return err
	}
	cms := kc.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !*reset {
		fmt.Print(cm.Data["Corefile"])
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["Corefile"] = sandbox.DefaultEKSCorefile
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return err
	}
	fmt.Printf("%s: kube-system/coredns Corefile reset to EKS's default\n", c.Name)
	return nil
}

// DeleteRoute deletes one route from the cluster's route tables to another cluster's CIDR through a
// peering: drift for meshd to repair.
func (d *Dir) DeleteRoute(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: sandbox delete-route CLUSTER")
	}
	st, c, err := d.statusOf(args[0])
	if err != nil {
		return err
	}
	others := map[string]string{}
	for _, o := range st.Clusters {
		if o.Name != c.Name {
			others[o.CIDR] = o.Name
		}
	}
	client := ec2.NewFromConfig(aws.Config{Region: c.Region, BaseEndpoint: aws.String(st.Moto),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	out, err := client.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{st.Networks[c.Name].VPCID}}}})
	if err != nil {
		return err
	}
	for _, t := range out.RouteTables {
		for _, r := range t.Routes {
			dst := aws.ToString(r.DestinationCidrBlock)
			if others[dst] == "" || aws.ToString(r.VpcPeeringConnectionId) == "" {
				continue
			}
			if _, err := client.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: t.RouteTableId, DestinationCidrBlock: r.DestinationCidrBlock}); err != nil {
				return err
			}
			fmt.Printf("%s: deleted route %s -> %s (to %s) from %s\n", c.Name, dst, aws.ToString(r.VpcPeeringConnectionId), others[dst], aws.ToString(t.RouteTableId))
			return nil
		}
	}
	return fmt.Errorf("%s: no route to another cluster's CIDR through a peering (has `meshctl apply` run?)", c.Name)
}

// Spawn runs a command in the background as part of the sandbox (its own session, output to
// logs/NAME.log, recorded in pids so that `sandbox down` stops it), e.g. the meshd daemon for the drift demo.
func (d *Dir) Spawn(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return errors.New("usage: sandbox spawn NAME -- CMD [ARG...]")
	}
	name, argv := args[0], args[2:]
	if _, err := d.readStatus(); err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	logPath := d.file("logs/" + name + ".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := d.appendPID(pidEntry{PID: cmd.Process.Pid, Name: "spawn/" + name, Marker: filepath.Base(path)}); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return err
	}
	fmt.Printf("%s: pid %d, log %s\n", name, cmd.Process.Pid, logPath)
	return nil
}

// statusOf reads the running sandbox's status and finds a cluster in it by name.
func (d *Dir) statusOf(cluster string) (*Status, sandbox.Cluster, error) {
	st, err := d.readStatus()
	if err != nil {
		return nil, sandbox.Cluster{}, err
	}
	c, err := st.cluster(cluster)
	return st, c, err
}
