package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kindio"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/poll"
	"github.com/meshd-io/meshd/internal/state"
)

// executors are the built-in AWS kinds' executors, each registered by the file that implements it.
var executors apply.Table[*Provider]

func init() {
	executors.Register(func(p *Provider) apply.Executor { return peeringExecutor{p} }, plan.KindPeering)
	executors.Register(func(p *Provider) apply.Executor { return routeExecutor{p} }, plan.KindRoute)
	executors.Register(func(p *Provider) apply.Executor { return ruleExecutor{p} }, plan.KindSGRule)
}

// Executors returns the apply executors for the AWS resource kinds: the built-in ones (executors), and
// those of the kinds whose I/O is registered in kindio (with the SDK configuration of the change's access
// and region).
func (p *Provider) Executors() map[plan.Kind]apply.Executor {
	out := executors.Make(p)
	for _, k := range kindio.AWSKinds() {
		io, _ := kindio.AWSOf(k)
		out[k] = kindio.AWSExecutor(io, func(at plan.Where) aws.Config { return p.ConfigFor(at.Access, at.Region) })
	}
	return classifyingAll(out)
}

// tags are the ownership tags of an object at address, plus a Name for the console.
func (p *Provider) tags(address, name string) []ec2types.Tag {
	return []ec2types.Tag{
		{Key: aws.String(model.TagMesh), Value: aws.String(p.opts.Mesh)},
		{Key: aws.String(model.TagID), Value: aws.String(address)},
		{Key: aws.String("Name"), Value: aws.String(name)},
	}
}

type peeringExecutor struct{ p *Provider }

func (e peeringExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	return apply.WithID(e.run(ctx, ch))
}

func (e peeringExecutor) run(ctx context.Context, ch plan.Change) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create:
		want := ch.After.(plan.Peering)
		in := &ec2.CreateVpcPeeringConnectionInput{
			VpcId:     aws.String(want.Requester.VPCID),
			PeerVpcId: aws.String(want.Accepter.VPCID),
			// Tags go on in the same call: an apply interrupted right after it still finds the peering as meshd's.
			TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeVpcPeeringConnection,
				Tags:         p.tags(ch.Address, fmt.Sprintf("meshd-%s-%s-%s", p.opts.Mesh, want.Requester.Cluster, want.Accepter.Cluster)),
			}},
		}
		if want.Accepter.Region != want.Requester.Region {
			in.PeerRegion = aws.String(want.Accepter.Region)
		}
		// Another account's VPC: requested with the requester's credentials, accepted with the accepter's.
		if want.Accepter.OwnerID != "" && want.Accepter.OwnerID != want.Requester.OwnerID {
			in.PeerOwnerId = aws.String(want.Accepter.OwnerID)
		}
		out, err := p.ec2For(want.Requester.Access, want.Requester.Region).CreateVpcPeeringConnection(ctx, in)
		if err != nil {
			return "", fmt.Errorf("requesting peering %s -> %s: %w", want.Requester.VPCID, want.Accepter.VPCID, err)
		}
		id := aws.ToString(out.VpcPeeringConnection.VpcPeeringConnectionId)
		return id, p.acceptAndWait(ctx, ch.Address, id, want.Accepter)

	case plan.Update:
		before := ch.Before.(plan.Peering)
		return before.ID, p.acceptAndWait(ctx, ch.Address, before.ID, before.Accepter)

	case plan.Adopt:
		before := ch.Before.(plan.Peering)
		name := fmt.Sprintf("meshd-%s-%s-%s", p.opts.Mesh, before.Requester.Cluster, before.Accepter.Cluster)
		if _, err := p.ec2For(before.Requester.Access, before.Requester.Region).CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: []string{before.ID}, Tags: p.tags(ch.Address, name)}); err != nil {
			return "", fmt.Errorf("tagging %s: %w", before.ID, err)
		}
		if before.Status == model.PeeringActive {
			return before.ID, nil
		}
		return before.ID, p.acceptAndWait(ctx, ch.Address, before.ID, before.Accepter)

	case plan.Delete:
		before := ch.Before.(plan.Peering)
		c := p.ec2For(before.Requester.Access, before.Requester.Region)
		if err := p.checkPeeringOwned(ctx, c, before.ID); err != nil {
			if errors.Is(err, errGone) {
				return "", nil
			}
			return "", err
		}
		_, err := c.DeleteVpcPeeringConnection(ctx, &ec2.DeleteVpcPeeringConnectionInput{
			VpcPeeringConnectionId: aws.String(before.ID)})
		if err != nil && !HasCode(err, codePeeringNotFound, codePeeringIDNotFound) {
			return "", fmt.Errorf("deleting %s: %w", before.ID, err)
		}
		return "", nil
	}
	return "", fmt.Errorf("unsupported action %q", ch.Action)
}

// acceptAndWait accepts a peering from the accepter's region (AWS refuses the accept from the requester's
// region for cross-region peerings) and account (only the accepter's account may accept) once it is
// visible there, then waits until it is active.
func (p *Provider) acceptAndWait(ctx context.Context, address, id string, accepter plan.Endpoint) error {
	accepterRegion := accepter.Region
	c := p.ec2For(accepter.Access, accepterRegion)
	status, err := p.waitPeering(ctx, address, c, id, func(s string) bool {
		return s == model.PeeringPending || s == model.PeeringActive || s == model.PeeringProvision
	})
	if err != nil {
		return err
	}
	if status == model.PeeringPending {
		_, err := c.AcceptVpcPeeringConnection(ctx, &ec2.AcceptVpcPeeringConnectionInput{VpcPeeringConnectionId: aws.String(id)})
		// Accepted meanwhile (by an interrupted earlier apply, say): the wait below tells.
		if err != nil && !HasCode(err, codeInvalidStateTransit) {
			return fmt.Errorf("accepting %s in %s: %w", id, accepterRegion, err)
		}
	}
	_, err = p.waitPeering(ctx, address, c, id, func(s string) bool { return s == model.PeeringActive })
	return err
}

// waitPeering polls the peering until done(status) holds, reporting progress every ProgressEvery. An end state
// (rejected, failed, ...) stops the wait with an error that carries AWS's status message.
func (p *Provider) waitPeering(ctx context.Context, address string, c EC2API, id string, done func(string) bool) (string, error) {
	var status string
	err := poll.Until(ctx, p.waitOptions(), func(ctx context.Context) (bool, error) {
		out, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{VpcPeeringConnectionIds: []string{id}})
		var message string
		status = ""
		switch {
		case err == nil:
			for _, pc := range out.VpcPeeringConnections {
				if aws.ToString(pc.VpcPeeringConnectionId) == id && pc.Status != nil {
					status, message = string(pc.Status.Code), aws.ToString(pc.Status.Message)
				}
			}
		case HasCode(err, codePeeringNotFound, codePeeringIDNotFound):
			// A new cross-region peering takes a moment to appear in the accepter's region.
		default:
			return false, fmt.Errorf("describing %s: %w", id, err)
		}
		if done(status) {
			return true, nil
		}
		if (model.ObservedPeering{Status: status}).Gone() {
			return false, fmt.Errorf("peering %s is %s: %s", id, status, message)
		}
		return false, nil
	}, func(waited time.Duration) { p.progress("%s: still %s [%s elapsed]", address, orDash(status), waited) })
	if ended, ok := errors.AsType[*poll.Ended](err); ok {
		if errors.Is(ended.Err, context.DeadlineExceeded) {
			return status, fmt.Errorf("peering %s still %s after %s", id, orDash(status), p.opts.WaitTimeout)
		}
		return status, ended.Err
	}
	return status, err
}

func orDash(s string) string {
	if s == "" {
		return "not visible yet"
	}
	return s
}

type routeExecutor struct{ p *Provider }

// Execute makes the route change and records it in the state: routes take no tags, so the state's record
// is what makes a route meshd's (for adoption, it is all there is to do).
func (e routeExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	peering, err := e.run(ctx, ch, known)
	if err != nil {
		return apply.Outcome{}, err
	}
	if ch.Action == plan.Delete {
		before := ch.Before.(plan.Route)
		return apply.Outcome{Record: func(st *state.State) { st.RemoveRoute(before.RouteTableID, before.DestinationCIDR) }}, nil
	}
	after := ch.After.(plan.Route)
	rec := state.RouteRecord{Region: after.Region, VPCID: after.VPCID, RouteTableID: after.RouteTableID,
		DestinationCIDR: after.DestinationCIDR, PeeringID: peering}
	return apply.Outcome{Record: func(st *state.State) {
		st.AddRoute(rec)
		plan.ForgetTGWVPCRouteOf(st, after.Cluster, after.RouteTableID, after.DestinationCIDR) // a route to a gateway it replaced
	}}, nil
}

// peeringOf is the peering a route goes through: planned, or created earlier in this apply.
func peeringOf(r plan.Route, known apply.Known) (string, error) {
	if r.PeeringID != "" {
		return r.PeeringID, nil
	}
	if id, ok := known(r.PeeringAddress); ok {
		return id, nil
	}
	return "", fmt.Errorf("the ID of %s is not known: it was not created in this apply", r.PeeringAddress)
}

// run makes the change and returns the peering the route now goes through.
func (e routeExecutor) run(ctx context.Context, ch plan.Change, known apply.Known) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create, plan.Update:
		want := ch.After.(plan.Route)
		peering, err := peeringOf(want, known)
		if err != nil {
			return "", err
		}
		c := p.ec2For(want.Access, want.Region)
		if ch.Action == plan.Create {
			_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(want.RouteTableID),
				DestinationCidrBlock: aws.String(want.DestinationCIDR), VpcPeeringConnectionId: aws.String(peering)})
			if HasCode(err, codeRouteExists) {
				err = p.checkExistingRoute(ctx, c, want, peering)
			}
		} else {
			before := ch.Before.(plan.Route)
			if err = p.checkRouteUnchanged(ctx, c, before); err == nil {
				_, err = c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(want.RouteTableID),
					DestinationCidrBlock: aws.String(want.DestinationCIDR), VpcPeeringConnectionId: aws.String(peering)})
			}
		}
		if err != nil {
			return "", fmt.Errorf("route to %s in %s: %w", want.DestinationCIDR, want.RouteTableID, err)
		}
		return peering, nil
	case plan.Adopt:
		return ch.After.(plan.Route).PeeringID, nil // routes take no tags: adopting one is recording it
	case plan.Delete:
		before := ch.Before.(plan.Route)
		c := p.ec2For(before.Access, before.Region)
		if err := p.checkRouteUnchanged(ctx, c, before); err != nil {
			if errors.Is(err, errRouteGone) {
				return "", nil
			}
			return "", err
		}
		_, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(before.RouteTableID),
			DestinationCidrBlock: aws.String(before.DestinationCIDR)})
		if err != nil && !HasCode(err, codeRouteNotFound) {
			return "", fmt.Errorf("deleting route to %s in %s: %w", before.DestinationCIDR, before.RouteTableID, err)
		}
		return "", nil
	}
	return "", fmt.Errorf("unsupported action %q", ch.Action)
}

// ErrConflict marks a change refused because an object meshd does not own is in the way.
var ErrConflict = errors.New("conflict")

// checkExistingRoute decides what a RouteAlreadyExists means: the route meshd wanted (made by an earlier,
// interrupted apply) is success; anything else is someone else's route, which meshd never overwrites.
func (p *Provider) checkExistingRoute(ctx context.Context, c EC2API, want plan.Route, peering string) error {
	out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{want.RouteTableID}})
	if err != nil {
		return err
	}
	for _, t := range out.RouteTables {
		for _, r := range t.Routes {
			if aws.ToString(r.DestinationCidrBlock) != want.DestinationCIDR {
				continue
			}
			if aws.ToString(r.VpcPeeringConnectionId) == peering {
				return nil
			}
			target := aws.ToString(r.VpcPeeringConnectionId)
			if target == "" {
				target = routeTarget(r)
			}
			return fmt.Errorf("%w: route table %s already routes %s to %s, which meshd did not create; left alone",
				ErrConflict, want.RouteTableID, want.DestinationCIDR, target)
		}
	}
	return fmt.Errorf("route to %s in %s: AWS says it exists but does not list it", want.DestinationCIDR, want.RouteTableID)
}

var errRouteGone = errors.New("route no longer exists")

// checkRouteUnchanged re-reads a route meshd is about to replace or delete and refuses when its target is no
// longer the one planned: between plan and apply (a saved plan, a daemon pass) someone may have pointed the
// destination elsewhere, and that route is theirs now.
func (p *Provider) checkRouteUnchanged(ctx context.Context, c EC2API, before plan.Route) error {
	out, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{before.RouteTableID}})
	if err != nil {
		return err
	}
	for _, t := range out.RouteTables {
		for _, r := range t.Routes {
			if aws.ToString(r.DestinationCidrBlock) != before.DestinationCIDR {
				continue
			}
			// The planned target: the peering, or (a route to a gateway the switch of topology replaces) the
			// gateway.
			now, planned := aws.ToString(r.VpcPeeringConnectionId), before.PeeringID
			if now == "" {
				now = routeTarget(r)
			}
			if planned == "" {
				planned = before.Target
			}
			if now != planned {
				return fmt.Errorf("%w: route table %s now routes %s to %s, not %s as planned; left alone",
					ErrConflict, before.RouteTableID, before.DestinationCIDR, now, planned)
			}
			return nil
		}
	}
	return errRouteGone
}

type ruleExecutor struct{ p *Provider }

func (e ruleExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	return apply.WithID(e.run(ctx, ch))
}

func (e ruleExecutor) run(ctx context.Context, ch plan.Change) (string, error) {
	p := e.p
	switch ch.Action {
	case plan.Create:
		want := ch.After.(plan.SGRule)
		perm := ec2types.IpPermission{
			IpProtocol: aws.String(want.Protocol),
			IpRanges:   []ec2types.IpRange{{CidrIp: aws.String(want.CIDR), Description: aws.String(want.Description)}},
		}
		if want.Protocol != "-1" {
			perm.FromPort, perm.ToPort = aws.Int32(want.FromPort), aws.Int32(want.ToPort)
		}
		out, err := p.ec2For(want.Access, want.Region).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId:       aws.String(want.GroupID),
			IpPermissions: []ec2types.IpPermission{perm},
			TagSpecifications: []ec2types.TagSpecification{{
				ResourceType: ec2types.ResourceTypeSecurityGroupRule,
				Tags:         p.tags(ch.Address, want.Description),
			}},
		})
		if HasCode(err, codePermissionDuplicate) {
			// The traffic is already allowed (by a rule created meanwhile): nothing to add, nothing to own.
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("allowing %s on %s: %w", want.CIDR, want.GroupID, err)
		}
		id := ""
		if len(out.SecurityGroupRules) > 0 {
			id = aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId)
		}
		return id, nil
	case plan.Adopt:
		before := ch.Before.(plan.SGRule)
		_, err := p.ruleClient(ch).CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{before.RuleID},
			Tags: p.tags(ch.Address, before.Description)})
		if err != nil {
			return "", fmt.Errorf("tagging %s: %w", before.RuleID, err)
		}
		return before.RuleID, nil
	case plan.Delete:
		before := ch.Before.(plan.SGRule)
		if err := p.checkRuleOwned(ctx, p.ruleClient(ch), before); err != nil {
			if errors.Is(err, errGone) {
				return "", nil
			}
			return "", err
		}
		_, err := p.ruleClient(ch).RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
			GroupId: aws.String(before.GroupID), SecurityGroupRuleIds: []string{before.RuleID}})
		if err != nil && !HasCode(err, codePermissionNotFound, codeRuleIDNotFound) {
			return "", fmt.Errorf("revoking %s on %s: %w", before.RuleID, before.GroupID, err)
		}
		return "", nil
	}
	return "", fmt.Errorf("unsupported action %q", ch.Action)
}

// ruleClient is the client of the rule's group: its account, its region.
func (p *Provider) ruleClient(ch plan.Change) EC2API {
	for _, r := range []plan.Resource{ch.After, ch.Before} {
		if rule, ok := r.(plan.SGRule); ok && rule.Region != "" {
			return p.ec2For(rule.Access, rule.Region)
		}
	}
	return p.EC2("")
}

// errGone says that the object a delete was planned for no longer exists: the delete has nothing to do.
var errGone = errors.New("no longer exists")

// notOwned is the refusal of a delete whose object stopped being meshd's between plan and apply (someone
// removed or changed its tag, or an edited saved plan names another object): it is left alone.
func (p *Provider) notOwned(what, id string, tags map[string]string) error {
	now := "no " + model.TagMesh + " tag"
	if mesh := model.MeshOf(tags); mesh != "" {
		now = fmt.Sprintf("%s=%s", model.TagMesh, mesh)
	}
	return fmt.Errorf("%w: %s %s carries %s, not %s=%s as planned: it is not meshd's, left alone; plan again",
		ErrConflict, what, id, now, model.TagMesh, p.opts.Mesh)
}

// checkPeeringOwned re-reads a peering meshd is about to delete and refuses unless it still carries this
// mesh's tag, as checkRouteUnchanged does for routes: the plan may be a saved one, and the peering's tags
// may have changed since it was made. A peering that is gone (or going) is errGone.
func (p *Provider) checkPeeringOwned(ctx context.Context, c EC2API, id string) error {
	out, err := c.DescribeVpcPeeringConnections(ctx, &ec2.DescribeVpcPeeringConnectionsInput{VpcPeeringConnectionIds: []string{id}})
	if HasCode(err, codePeeringNotFound, codePeeringIDNotFound) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("describing %s before deleting it: %w", id, err)
	}
	// Filtered here too: moto ignores the IDs and lists deleted peerings.
	for _, pc := range out.VpcPeeringConnections {
		if aws.ToString(pc.VpcPeeringConnectionId) != id {
			continue
		}
		if pc.Status != nil && (model.ObservedPeering{Status: string(pc.Status.Code)}).Gone() {
			return errGone
		}
		if tags := tagMap(pc.Tags); !model.TaggedBy(tags, p.opts.Mesh) {
			return p.notOwned("peering", id, tags)
		}
		return nil
	}
	return errGone
}

// checkRuleOwned re-reads a security-group rule meshd is about to revoke and refuses unless it still
// carries this mesh's tag and belongs to the planned group. A rule that is gone is errGone.
func (p *Provider) checkRuleOwned(ctx context.Context, c EC2API, rule plan.SGRule) error {
	if rule.RuleID == "" {
		return fmt.Errorf("%w: the plan names no rule ID for %s on %s; left alone, plan again", ErrConflict, rule.CIDR, rule.GroupID)
	}
	out, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{rule.RuleID}})
	if HasCode(err, codeRuleIDNotFound) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("describing %s before revoking it: %w", rule.RuleID, err)
	}
	for _, r := range out.SecurityGroupRules {
		if aws.ToString(r.SecurityGroupRuleId) != rule.RuleID {
			continue
		}
		if g := aws.ToString(r.GroupId); g != rule.GroupID {
			return fmt.Errorf("%w: rule %s is in group %s, not %s as planned: left alone, plan again", ErrConflict, rule.RuleID, g, rule.GroupID)
		}
		if tags := tagMap(r.Tags); !model.TaggedBy(tags, p.opts.Mesh) {
			return p.notOwned("rule", rule.RuleID, tags)
		}
		return nil
	}
	return errGone
}
