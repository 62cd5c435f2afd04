package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
)

// Annotations and names the AWS Load Balancer Controller uses, which the stand-in honours.
const (
	AnnotationLBType   = "service.beta.kubernetes.io/aws-load-balancer-type"
	AnnotationInternal = "service.beta.kubernetes.io/aws-load-balancer-internal"
	AnnotationScheme   = "service.beta.kubernetes.io/aws-load-balancer-scheme"
	// LBFinalizer is the AWS Load Balancer Controller's finalizer on Services it made a load balancer for:
	// the Service is gone only after its NLB is.
	LBFinalizer = "service.k8s.aws/resources"
)

// LBCluster is one cluster the load-balancer stand-in serves.
type LBCluster struct {
	Name      string
	Client    kubernetes.Interface
	AWS       aws.Config // for the cluster's region
	SubnetIDs []string   // the NLB's subnets; one ENI each
	// VPCID is the cluster's VPC, where the NLB's frontend security group is made (see lbfrontend.go);
	// empty: NLBs without security groups, as an LBC older than v2.6 makes them.
	VPCID string
	// IPs are the ENIs' private addresses, one per subnet in order (wrapping around): the loopback addresses
	// of the cluster's CoreDNS, so that traffic to "the NLB's IPs" reaches it.
	IPs []string
}

// LBController stands in for the AWS Load Balancer Controller: for each Service of type LoadBalancer
// annotated `service.beta.kubernetes.io/aws-load-balancer-type: nlb` it creates a network load balancer
// (ELBv2, in the cluster's subnets, internal unless the scheme annotation says internet-facing, with a
// frontend security group as LBC v2.6+ makes it: see lbfrontend.go) and, since
// moto makes none, one ENI per subnet described `ELB net/<lb-name>/<lb-id>` with the cluster's CoreDNS
// address; it then sets the Service's status.loadBalancer.ingress[0].hostname to the NLB's DNS name. It
// holds the Service with the controller's finalizer and deletes the ENIs and the NLB when the Service is
// deleted or stops asking for an NLB. Like the real controller, it names the NLB
// k8s-<namespace>-<name>-<hash> and tags it with the cluster and the Service.
type LBController struct {
	Clusters []LBCluster
	Logf     func(format string, args ...any)
	// Resync re-examines every Service this often (default 30s), repairing what was changed behind its back.
	Resync time.Duration

	pauses
}

// Run serves every cluster until ctx ends.
func (c *LBController) Run(ctx context.Context) {
	forEach(c.Clusters, func(cl LBCluster) {
		runServiceQueue(ctx, cl.Client, c.Resync,
			func(q *serviceQueue, key string) error { return c.reconcile(ctx, cl, q, key) },
			func(key string, err error) { c.logf("lb %s: %s: %v (retrying)", cl.Name, key, err) })
	})
}

// wantsNLB reports whether the stand-in should give svc a network load balancer.
func wantsNLB(svc *corev1.Service) bool {
	return svc.DeletionTimestamp == nil && svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Annotations[AnnotationLBType] == "nlb"
}

func (c *LBController) reconcile(ctx context.Context, cl LBCluster, q *serviceQueue, key string) error {
	if c.isPaused(cl.Name) {
		return nil
	}
	svc, err := q.service(key)
	if err != nil || svc == nil {
		return err
	}
	hasFinalizer := slices.Contains(svc.Finalizers, LBFinalizer)
	if !wantsNLB(svc) && !hasFinalizer {
		return nil
	}
	name := LBName(cl.Name, svc.Namespace, svc.Name)
	lbs := elbv2.NewFromConfig(cl.AWS)
	ec2c := ec2.NewFromConfig(cl.AWS)
	if !wantsNLB(svc) {
		if err := deleteLB(ctx, lbs, ec2c, name); err != nil {
			return err
		}
		if cl.VPCID != "" {
			if err := deleteFrontendGroup(ctx, cl, ec2c, svc.Namespace, svc.Name); err != nil {
				return err
			}
		}
		c.logf("lb %s: %s: deleted NLB %s, its ENIs and its frontend security group", cl.Name, key, name)
		if svc.DeletionTimestamp == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
			svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
			if svc, err = cl.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		svc.Finalizers = slices.DeleteFunc(svc.Finalizers, func(f string) bool { return f == LBFinalizer })
		_, err := cl.Client.CoreV1().Services(svc.Namespace).Update(ctx, svc, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}

	if !hasFinalizer {
		svc.Finalizers = append(svc.Finalizers, LBFinalizer)
		if svc, err = cl.Client.CoreV1().Services(svc.Namespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	var groups []string
	if cl.VPCID != "" {
		if groups, err = c.frontendGroups(ctx, cl, ec2c, svc, key); err != nil {
			return err
		}
	}
	lb, err := describeLB(ctx, lbs, name)
	if err != nil {
		return err
	}
	if lb != nil && groups != nil {
		if err := c.attachGroups(ctx, cl, lbs, lb, groups, key); err != nil {
			return err
		}
	}
	if lb == nil {
		scheme := elbtypes.LoadBalancerSchemeEnumInternal
		if svc.Annotations[AnnotationScheme] == "internet-facing" {
			scheme = elbtypes.LoadBalancerSchemeEnumInternetFacing
		}
		out, err := lbs.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{
			Name:           aws.String(name),
			Type:           elbtypes.LoadBalancerTypeEnumNetwork,
			Scheme:         scheme,
			Subnets:        cl.SubnetIDs,
			SecurityGroups: groups,
			Tags: []elbtypes.Tag{
				{Key: aws.String("elbv2.k8s.aws/cluster"), Value: aws.String(cl.Name)},
				{Key: aws.String("service.k8s.aws/stack"), Value: aws.String(key)},
				{Key: aws.String("service.k8s.aws/resource"), Value: aws.String("LoadBalancer")},
			},
		})
		if Retried(err, "DuplicateLoadBalancerName") {
			// A retried create (see Retried): the first attempt made it.
			if found, derr := describeLB(ctx, lbs, name); derr == nil && found != nil {
				out, err = &elbv2.CreateLoadBalancerOutput{LoadBalancers: []elbtypes.LoadBalancer{*found}}, nil
			}
		}
		if err != nil {
			return fmt.Errorf("creating NLB %s: %w", name, err)
		}
		lb = &out.LoadBalancers[0]
		c.logf("lb %s: %s: created NLB %s (%s)", cl.Name, key, name, aws.ToString(lb.DNSName))
	}
	desc, enis, err := lbENIs(ctx, ec2c, lb)
	if err != nil {
		return err
	}
	for i, subnet := range cl.SubnetIDs {
		if slices.ContainsFunc(enis, func(n ec2types.NetworkInterface) bool {
			return aws.ToString(n.SubnetId) == subnet && aws.ToString(n.Description) == desc
		}) {
			continue
		}
		ip := cl.IPs[i%len(cl.IPs)]
		if _, err := ec2c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(subnet), Description: aws.String(desc), PrivateIpAddress: aws.String(ip)}); err != nil &&
			!Retried(err, "InvalidIPAddress.InUse") {
			return fmt.Errorf("creating ENI %q in %s: %w", desc, subnet, err)
		}
		c.logf("lb %s: %s: ENI %q %s in %s", cl.Name, key, desc, ip, subnet)
	}
	host := aws.ToString(lb.DNSName)
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].Hostname != host || ing[0].IP != "" {
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: host}}}
		if _, err := cl.Client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		c.logf("lb %s: %s: status.loadBalancer.ingress[0].hostname = %s", cl.Name, key, host)
	}
	return nil
}

// lbENIs returns the description AWS gives an NLB's network interfaces and the interfaces that have it.
func lbENIs(ctx context.Context, ec2c *ec2.Client, lb *elbtypes.LoadBalancer) (string, []ec2types.NetworkInterface, error) {
	desc, err := eniDescription(aws.ToString(lb.LoadBalancerArn))
	if err != nil {
		return "", nil, err
	}
	out, err := ec2c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("description"), Values: []string{desc}}}})
	if err != nil {
		return "", nil, err
	}
	return desc, out.NetworkInterfaces, nil
}

func describeLB(ctx context.Context, lbs *elbv2.Client, name string) (*elbtypes.LoadBalancer, error) {
	out, err := lbs.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{name}})
	var nf *elbtypes.LoadBalancerNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(out.LoadBalancers) == 0 {
		return nil, nil
	}
	return &out.LoadBalancers[0], nil
}

// deleteLB deletes the NLB of that name and its ENIs. Every one of that name: AWS keeps names unique, but
// moto checks a new load balancer's ARN, which has a random part, so a CreateLoadBalancer the SDK retried
// after moto had done it (a timeout on a loaded machine) leaves two of one name.
func deleteLB(ctx context.Context, lbs *elbv2.Client, ec2c *ec2.Client, name string) error {
	for {
		lb, err := describeLB(ctx, lbs, name)
		if err != nil || lb == nil {
			return err
		}
		_, enis, err := lbENIs(ctx, ec2c, lb)
		if err != nil {
			return err
		}
		for _, n := range enis {
			if _, err := ec2c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: n.NetworkInterfaceId}); err != nil {
				return err
			}
		}
		if _, err := lbs.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}); err != nil {
			return err
		}
	}
}

// eniDescription is the description AWS gives the load balancer's ENIs (meshd looks them up by it).
func eniDescription(arn string) (string, error) {
	desc := awsprovider.ENIDescription(arn)
	if desc == "" {
		return "", fmt.Errorf("unexpected load balancer ARN %q", arn)
	}
	return desc, nil
}

// LBName is the NLB name the stand-in gives a Service, in the AWS Load Balancer Controller's pattern
// k8s-<namespace, 8>-<name, 8>-<10 hex> (at most 32 characters).
func LBName(cluster, namespace, name string) string {
	trunc := func(s string) string {
		s = strings.ReplaceAll(s, "-", "")
		if len(s) > 8 {
			s = s[:8]
		}
		return s
	}
	return "k8s-" + trunc(namespace) + "-" + trunc(name) + "-" + sha256Hex([]byte(cluster + "/" + namespace + "/" + name))[:10]
}

func (c *LBController) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
