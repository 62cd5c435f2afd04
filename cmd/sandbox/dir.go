package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// Dir is the sandbox's directory:
//
//	pids          "<pid> <name> <marker>" per process: serve, the servers it started, spawned processes
//	status.json   what serve started (clusters, addresses, processes), written when it is ready
//	env           shell exports for meshctl (AWS_ENDPOINT_URL, fake credentials, KUBECONFIG)
//	kubeconfig    one context per cluster (holds tokens: mode 0600, never printed)
//	logs/         serve.log, progress.log, one log per process
type Dir struct{ Path string }

func (d *Dir) file(name string) string { return filepath.Join(d.Path, name) }

// Status is status.json.
type Status struct {
	ServePID   int                        `json:"serve_pid"`
	Started    time.Time                  `json:"started"`
	Ready      time.Time                  `json:"ready"`
	Moto       string                     `json:"moto"`
	Kubeconfig string                     `json:"kubeconfig"`
	Clusters   []sandbox.Cluster          `json:"clusters"`
	Networks   map[string]sandbox.Network `json:"networks"`
	Processes  []sandbox.Proc             `json:"processes"`
}

func (d *Dir) readStatus() (*Status, error) {
	b, err := os.ReadFile(d.file("status.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the sandbox is not up (no %s); run `sandbox up`", d.file("status.json"))
	}
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", d.file("status.json"), err)
	}
	return &st, nil
}

// pidEntry is a line of the pids file.
type pidEntry struct {
	PID    int
	Name   string
	Marker string // a substring of the process's command line, checked before signalling (PIDs are reused)
}

func (d *Dir) readPIDs() []pidEntry {
	f, err := os.Open(d.file("pids"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []pidEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		pid, err := strconv.Atoi(fields[0])
		if err != nil || pid <= 1 {
			continue
		}
		out = append(out, pidEntry{PID: pid, Name: fields[1], Marker: fields[2]})
	}
	return out
}

func (d *Dir) appendPID(e pidEntry) error {
	f, err := os.OpenFile(d.file("pids"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%d %s %s\n", e.PID, e.Name, e.Marker)
	return err
}

// alive reports whether e's process runs and is still the process that was recorded.
func alive(e pidEntry) bool {
	if syscall.Kill(e.PID, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.PID))
	if err != nil {
		return true // no /proc: trust the PID
	}
	if len(b) == 0 {
		return false // a zombie
	}
	return strings.Contains(string(b), e.Marker)
}

// healthy reports whether a sandbox is up with all its processes running.
func (d *Dir) healthy() (*Status, []string) {
	st, err := d.readStatus()
	if err != nil {
		return nil, []string{err.Error()}
	}
	var dead []string
	for _, e := range d.readPIDs() {
		if !alive(e) {
			dead = append(dead, fmt.Sprintf("%s (pid %d) is not running", e.Name, e.PID))
		}
	}
	return st, dead
}

// Up starts the sandbox in the background (a detached `sandbox serve`), printing its progress, and
// returns when it is ready. A sandbox that is already up and healthy is reused (--restart replaces it).
func (d *Dir) Up(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox up", flag.ContinueOnError)
	restart := fs.Bool("restart", false, "stop a running sandbox and start a new one")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the sandbox to be ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(d.Path); err == nil {
		st, dead := d.healthy()
		switch {
		case *restart:
			fmt.Println("restarting the sandbox (--restart)")
		case st != nil && len(dead) == 0 && d.selfCheck(st) == nil:
			fmt.Printf("sandbox already up since %s (serve pid %d); reusing it (`sandbox up --restart` for a new one)\n",
				st.Ready.Format(time.TimeOnly), st.ServePID)
			return nil
		default:
			fmt.Printf("found a sandbox that is not healthy (%s); restarting it\n", strings.Join(dead, "; "))
		}
		if err := d.Down(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.file("logs"), 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(d.file("logs/serve.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	start := time.Now()
	cmd := exec.Command(self, "--dir", d.Path, "serve")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this command and its terminal
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("sandbox: starting in the background (serve pid %d, logs in %s)\n", cmd.Process.Pid, d.file("logs"))

	// Follow serve's progress file until it says READY or ERROR, or serve dies.
	var off int64
	deadline := time.After(*timeout)
	for {
		done, err := d.followProgress(&off)
		if done {
			if err != nil {
				return err
			}
			break
		}
		select {
		case err := <-exited:
			d.followProgress(&off)
			return fmt.Errorf("sandbox serve exited (%v) before it was ready; see %s", err, d.file("logs/serve.log"))
		case <-deadline:
			return fmt.Errorf("sandbox not ready after %s; see %s (`sandbox down` stops it)", *timeout, d.file("logs"))
		case <-ctx.Done():
			fmt.Println("\ninterrupted; stopping the sandbox")
			return d.Down()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Printf("sandbox up in %.1fs\n", time.Since(start).Seconds())
	fmt.Printf("  source %s   # AWS_ENDPOINT_URL (moto), fake AWS credentials, KUBECONFIG\n", d.file("env"))
	return nil
}

// followProgress prints what serve added to progress.log since *off; done is true at READY or ERROR.
func (d *Dir) followProgress(off *int64) (done bool, err error) {
	f, err := os.Open(d.file("logs/progress.log"))
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if _, err := f.Seek(*off, io.SeekStart); err != nil {
		return false, nil
	}
	b, _ := io.ReadAll(f)
	*off += int64(len(b))
	s := string(b)
	if i := strings.Index(s, "READY\n"); i >= 0 {
		fmt.Print(indent(s[:i]))
		return true, nil
	}
	if i := strings.Index(s, "ERROR: "); i >= 0 {
		fmt.Print(indent(s[:i]))
		msg := strings.TrimSpace(s[i+len("ERROR: "):])
		return true, fmt.Errorf("%s\n(logs in %s)", msg, d.file("logs"))
	}
	fmt.Print(indent(s))
	return false, nil
}

var atLineStart = true

// indent prefixes each line of progress with two spaces, across calls.
func indent(s string) string {
	var b strings.Builder
	for _, r := range s {
		if atLineStart {
			b.WriteString("  ")
		}
		b.WriteRune(r)
		atLineStart = r == '\n'
	}
	return b.String()
}

// Serve runs the sandbox in this process until SIGTERM or SIGINT: `sandbox up` starts it detached.
func (d *Dir) Serve(args []string) error {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	progress, err := os.OpenFile(d.file("logs/progress.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer progress.Close()
	self, _ := os.Executable()
	if err := d.appendPID(pidEntry{PID: os.Getpid(), Name: "serve", Marker: filepath.Base(self)}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	go func() {
		if s, ok := <-sigs; ok {
			log.Printf("received %s while starting; stopping", s)
			cancel()
		}
	}()

	started := time.Now()
	s, err := sandbox.Start(ctx, sandbox.Options{Dir: d.Path, Progress: progress, Logf: log.Printf})
	if err != nil {
		fmt.Fprintf(progress, "ERROR: %v\n", err)
		log.Printf("start failed: %v", err)
		return quiet{err}
	}
	signal.Stop(sigs)
	close(sigs)

	st := Status{ServePID: os.Getpid(), Started: started, Ready: time.Now(), Moto: s.MotoEndpoint, Kubeconfig: s.Kubeconfig,
		Clusters: s.Clusters, Networks: s.Networks, Processes: s.Processes()}
	for _, p := range st.Processes {
		marker := strings.Fields(p.Name)[0] // coredns, etcd
		switch {
		case strings.HasPrefix(p.Name, "moto"):
			marker = "moto_server"
		case strings.HasPrefix(p.Name, "kube-apiserver"):
			marker = "kube-apiserver"
		}
		if err := d.appendPID(pidEntry{PID: p.PID, Name: strings.ReplaceAll(p.Name, " ", "/"), Marker: marker}); err != nil {
			log.Print(err)
		}
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(d.file("status.json"), b, 0o644); err != nil {
		log.Print(err)
	}
	var env strings.Builder
	env.WriteString("# written by `sandbox up`: points meshctl at the sandbox\n")
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&env, "export %s=%q\n", k, v)
	}
	if err := os.WriteFile(d.file("env"), []byte(env.String()), 0o644); err != nil {
		log.Print(err)
	}
	fmt.Fprintln(progress, "READY")
	log.Printf("ready in %.1fs", time.Since(started).Seconds())

	// Run until told to stop; report processes that die on their own (status shows them).
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	died := make(chan sandbox.Proc, len(st.Processes))
	for _, p := range st.Processes {
		go func() {
			<-p.Process().Done()
			died <- p
		}()
	}
	for {
		select {
		case p := <-died:
			_, err := p.Process().Exited()
			log.Printf("%s (pid %d) exited on its own: %v; log %s", p.Name, p.PID, err, p.LogPath)
		case sig := <-term:
			log.Printf("received %s; stopping", sig)
			err := s.Stop()
			log.Printf("stopped: %v", err)
			return nil
		}
	}
}

// Down stops everything recorded in the pids file (serve first, which stops its servers gracefully; then
// whatever is left, by process group) and removes the directory.
func (d *Dir) Down() error {
	if _, err := os.Stat(d.Path); errors.Is(err, os.ErrNotExist) {
		fmt.Println("sandbox: nothing to stop")
		return nil
	}
	entries := d.readPIDs()
	var running []pidEntry
	for _, e := range entries {
		if alive(e) {
			running = append(running, e)
		}
	}
	for _, e := range running {
		if e.Name == "serve" || strings.HasPrefix(e.Name, "spawn/") {
			_ = syscall.Kill(-e.PID, syscall.SIGTERM) // serve and spawned processes lead their own group
			_ = syscall.Kill(e.PID, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(testenv.StopTimeout + 10*time.Second)
	for time.Now().Before(deadline) {
		left := 0
		for _, e := range running {
			if alive(e) {
				left++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	killed := 0
	for _, e := range running {
		if alive(e) {
			_ = syscall.Kill(-e.PID, syscall.SIGKILL)
			_ = syscall.Kill(e.PID, syscall.SIGKILL)
			killed++
		}
	}
	if err := os.RemoveAll(d.Path); err != nil {
		return err
	}
	msg := fmt.Sprintf("sandbox: stopped %d processes and removed %s", len(running), d.Path)
	if killed > 0 {
		msg += fmt.Sprintf(" (%d needed SIGKILL)", killed)
	}
	fmt.Println(msg)
	return nil
}

// Status prints the sandbox's processes and clusters.
func (d *Dir) Status() error {
	st, err := d.readStatus()
	entries := d.readPIDs()
	if err != nil && len(entries) == 0 {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tADDRESS\tLOG")
	addr := map[int]sandbox.Proc{}
	if st != nil {
		for _, p := range st.Processes {
			addr[p.PID] = p
		}
	}
	bad := 0
	for _, e := range entries {
		state := "running"
		if !alive(e) {
			state, bad = "NOT RUNNING", bad+1
		}
		p := addr[e.PID]
		logPath := p.LogPath
		switch {
		case e.Name == "serve":
			logPath = d.file("logs/serve.log")
		case strings.HasPrefix(e.Name, "spawn/"):
			logPath = d.file("logs/" + strings.TrimPrefix(e.Name, "spawn/") + ".log")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Name, e.PID, state, p.Addr, logPath)
	}
	tw.Flush()
	if st == nil {
		return fmt.Errorf("the sandbox is still starting or failed to start; see %s", d.file("logs"))
	}
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tREGION\tVPC\tCIDR\tKUBE CONTEXT\tCOREDNS\tSAMPLE POD")
	for _, c := range st.Clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s -> %s\n", c.Name, c.Region, st.Networks[c.Name].VPCID, c.CIDR, c.Context,
			strings.Join(c.DNS, ","), c.SampleName(), c.SampleIP)
	}
	tw.Flush()
	fmt.Printf("\nup since %s; env: source %s\n", st.Ready.Format(time.DateTime), d.file("env"))
	if bad > 0 {
		return quiet{fmt.Errorf("%d processes are not running", bad)}
	}
	return nil
}

// selfCheck asks each cluster's CoreDNS for its own sample name.
func (d *Dir) selfCheck(st *Status) error {
	for _, c := range st.Clusters {
		if _, err := testenv.LookupA(c.DNSAddr(), c.SampleName(), false); err != nil {
			return err
		}
	}
	return nil
}
