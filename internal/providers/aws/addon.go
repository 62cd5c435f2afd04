package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/poll"
	"github.com/meshd-io/meshd/internal/state"
)

// The EKS CoreDNS managed add-on writes its Corefile into kube-system/coredns on every add-on update with
// resolveConflicts=OVERWRITE: the add-on's configured corefile (configurationValues.corefile), else its
// default. meshd reads the add-on of each EKS member (plan.AddonNote tells what such an update would do)
// and, with dns { corefile_via = "eks_addon" }, writes its blocks into that corefile (plan.KindAddonCorefile)
// so that updates keep them. The configuration may hold credentials: it is compared by hash and never
// put in an error.

// AddonTarget is a cluster whose CoreDNS add-on ObserveAddons looks up.
type AddonTarget struct {
	Cluster    string
	Region     string
	EKSCluster string
	// Schema also reads the configuration schema of the add-on's version, to know whether it takes a
	// corefile (corefile_via = "eks_addon").
	Schema bool
}

// ObserveAddons describes the CoreDNS add-on of each target, the targets in parallel: one DescribeAddon
// each, plus one DescribeAddonConfiguration per region and version asked for. A cluster without the
// add-on (not managed by EKS) is absent from the result. moto, which has no add-on API, answers 404 to
// these calls, which reads as no add-on.
func (p *Provider) ObserveAddons(ctx context.Context, targets []AddonTarget) (map[string]model.Addon, error) {
	out := map[string]model.Addon{}
	errs := map[string]error{}
	schemas := map[string]bool{} // by region and version
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, found, err := p.describeAddon(ctx, t)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs[t.Cluster] = err
			case found:
				out[t.Cluster] = a
			}
		}()
	}
	wg.Wait()
	for _, name := range sortedKeys(errs) {
		return nil, errs[name]
	}
	for _, t := range targets {
		a, ok := out[t.Cluster]
		if !ok || !t.Schema || a.Version == "" {
			continue
		}
		key := a.Region + "/" + a.Version
		has, seen := schemas[key]
		if !seen {
			res, err := p.EKS(a.Region).DescribeAddonConfiguration(ctx, &eks.DescribeAddonConfigurationInput{
				AddonName: aws.String(a.Name), AddonVersion: aws.String(a.Version)})
			if err != nil {
				return nil, fmt.Errorf("reading the configuration schema of add-on %s %s in %s: %w", a.Name, a.Version, a.Region, classified(err))
			}
			has = corefile.SchemaHasCorefile(aws.ToString(res.ConfigurationSchema))
			schemas[key] = has
		}
		a.SchemaChecked, a.SchemaHasCorefile = true, has
		out[t.Cluster] = a
	}
	return out, nil
}

func (p *Provider) describeAddon(ctx context.Context, t AddonTarget) (model.Addon, bool, error) {
	res, err := p.EKS(t.Region).DescribeAddon(ctx, &eks.DescribeAddonInput{
		ClusterName: aws.String(t.EKSCluster), AddonName: aws.String(model.CoreDNSAddon)})
	if addonNotFound(err) {
		return model.Addon{}, false, nil
	}
	if err != nil {
		return model.Addon{}, false, fmt.Errorf("describing the %s add-on of EKS cluster %s in %s: %w",
			model.CoreDNSAddon, t.EKSCluster, t.Region, classified(err))
	}
	a := model.Addon{Cluster: t.Cluster, Region: t.Region, EKSCluster: t.EKSCluster, Name: model.CoreDNSAddon}
	if res.Addon != nil {
		a.Version = aws.ToString(res.Addon.AddonVersion)
		a.Status = string(res.Addon.Status)
		a.ConfigurationValues = aws.ToString(res.Addon.ConfigurationValues)
	}
	return a, true, nil
}

// addonNotFound: EKS says ResourceNotFoundException for a cluster without the add-on (or an unknown
// cluster); a plain 404 is moto's answer to an operation it does not implement.
func addonNotFound(err error) bool {
	if err == nil {
		return false
	}
	if HasCode(err, codeEKSNotFound) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

const codeResourceInUse = "ResourceInUseException"

func init() {
	executors.Register(func(p *Provider) apply.Executor { return addonExecutor{p} }, plan.KindAddonCorefile)
}

type addonExecutor struct{ p *Provider }

// Execute writes meshd's blocks into the add-on's configurationValues.corefile (or takes them out), with
// UpdateAddon and resolveConflicts=PRESERVE (meshd changes the configuration only; the ConfigMap is the
// corefile kind's), and waits for the update to finish. It reads the configuration again first and
// refuses to write over one that is not the one planned.
func (e addonExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	p := e.p
	before, _ := ch.Before.(plan.AddonCorefile)
	after, ok := ch.After.(plan.AddonCorefile)
	if ch.Action != plan.Update || !ok {
		return apply.Outcome{}, fmt.Errorf("unsupported action %q", ch.Action)
	}
	t := AddonTarget{Cluster: after.Cluster, Region: after.Region, EKSCluster: after.EKSCluster}
	a, found, err := p.describeAddon(ctx, t)
	if err != nil {
		return apply.Outcome{}, err
	}
	if !found {
		if after.RemoveAll {
			return apply.Outcome{Record: func(st *state.State) { st.RemoveAddon(after.Cluster) }}, nil
		}
		return apply.Outcome{}, fmt.Errorf("EKS cluster %s has no %s add-on any more: plan again", t.EKSCluster, model.CoreDNSAddon)
	}
	values := a.ConfigurationValues
	if corefile.Hash(values) != before.ConfigHash {
		return apply.Outcome{}, fmt.Errorf("the %s add-on configuration of EKS cluster %s changed since the plan (sha256:%s, planned sha256:%s): plan again",
			a.Name, t.EKSCluster, corefile.ShortHash(values), short(before.ConfigHash))
	}

	var out string
	var record func(*state.State)
	if after.RemoveAll {
		out, _, err = corefile.RemoveAddonConfig(values, p.opts.Mesh, before.Owned, before.Restore)
		if err != nil {
			return apply.Outcome{}, err
		}
		record = func(st *state.State) { st.RemoveAddon(after.Cluster) }
	} else {
		blocks, err := plan.Corefile{Blocks: after.Blocks}.Resolved(known)
		if err != nil {
			return apply.Outcome{}, err
		}
		base, err := p.addonBase(ctx, values, after)
		if err != nil {
			return apply.Outcome{}, err
		}
		var rep corefile.Report
		out, _, rep, err = corefile.MergeAddonConfig(values, base, p.opts.Mesh, before.Owned, blocks)
		if err != nil {
			return apply.Outcome{}, err
		}
		if len(rep.Conflicts) > 0 {
			return apply.Outcome{}, fmt.Errorf("%w: the add-on's corefile of EKS cluster %s now serves %s in a block meshd did not write; left alone",
				ErrConflict, t.EKSCluster, rep.Conflicts[0].Zone)
		}
		rec := after.Record(out)
		record = func(st *state.State) { st.SetAddon(after.Cluster, rec) }
	}
	if out != values {
		if err := p.updateAddon(ctx, ch.Address, a, out); err != nil {
			return apply.Outcome{}, err
		}
	}
	return apply.Outcome{Record: record}, nil
}

// addonBase is the Corefile meshd's blocks go into when the configuration has no corefile: the add-on's
// default, as it stands in the ConfigMap without meshd's blocks.
func (p *Provider) addonBase(ctx context.Context, values string, after plan.AddonCorefile) (string, error) {
	c, err := corefile.ParseAddonConfig(values)
	if err != nil {
		return "", err
	}
	if _, has, err := c.Corefile(); has || err != nil {
		return "", err
	}
	if p.opts.Corefile == nil {
		return "", errors.New("this meshd cannot read the cluster's ConfigMap for the add-on's default Corefile")
	}
	text, err := p.opts.Corefile(ctx, after.KubeContext)
	if err != nil {
		return "", fmt.Errorf("reading the Corefile of cluster %s for the add-on's default: %w", after.Cluster, err)
	}
	base, _, err := corefile.Remove(text, p.opts.Mesh, after.ConfigMapOwned)
	return base, err
}

// updateAddon sends the configuration and waits until EKS reports the update done. An add-on that is
// being updated already (ResourceInUseException) is waited for, within the same timeout.
func (p *Provider) updateAddon(ctx context.Context, address string, a model.Addon, values string) error {
	c := p.EKS(a.Region)
	// One token per write: the SDK's retry of a request EKS did take is then no second update, while the
	// same change made again later (after someone reset the configuration) is a new one.
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	token := hex.EncodeToString(nonce[:])
	var id string
	status := "not started"
	err := poll.Until(ctx, p.waitOptions(), func(ctx context.Context) (bool, error) {
		if id == "" {
			res, err := c.UpdateAddon(ctx, &eks.UpdateAddonInput{ClusterName: aws.String(a.EKSCluster), AddonName: aws.String(a.Name),
				ConfigurationValues: aws.String(values), ResolveConflicts: ekstypes.ResolveConflictsPreserve,
				ClientRequestToken: aws.String(token)})
			if HasCode(err, codeResourceInUse) {
				status = "waiting for another update of the add-on"
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("updating the %s add-on of EKS cluster %s: %w", a.Name, a.EKSCluster, err)
			}
			if res.Update == nil || aws.ToString(res.Update.Id) == "" {
				return true, nil
			}
			id = aws.ToString(res.Update.Id)
		}
		res, err := c.DescribeUpdate(ctx, &eks.DescribeUpdateInput{Name: aws.String(a.EKSCluster), UpdateId: aws.String(id),
			AddonName: aws.String(a.Name)})
		if err != nil {
			return false, fmt.Errorf("describing update %s of the %s add-on of EKS cluster %s: %w", id, a.Name, a.EKSCluster, err)
		}
		if res.Update == nil {
			return false, nil
		}
		status = string(res.Update.Status)
		switch res.Update.Status {
		case ekstypes.UpdateStatusSuccessful:
			return true, nil
		case ekstypes.UpdateStatusFailed, ekstypes.UpdateStatusCancelled:
			// Error codes only: EKS's messages about a configuration can quote it.
			var codes []string
			for _, ue := range res.Update.Errors {
				codes = append(codes, string(ue.ErrorCode))
			}
			sort.Strings(codes)
			return false, fmt.Errorf("update %s of the %s add-on of EKS cluster %s is %s (%s): see the update's errors with aws eks describe-update",
				id, a.Name, a.EKSCluster, status, strings.Join(codes, ", "))
		}
		return false, nil
	}, func(waited time.Duration) { p.progress("%s: add-on update %s [%s elapsed]", address, status, waited) })
	if ended, ok := errors.AsType[*poll.Ended](err); ok {
		if errors.Is(ended.Err, context.DeadlineExceeded) {
			return fmt.Errorf("the %s add-on update of EKS cluster %s is still %s after %s", a.Name, a.EKSCluster, status, p.opts.WaitTimeout)
		}
		return ended.Err
	}
	return err
}

func short(hash string) string { return hash[:min(12, len(hash))] }
