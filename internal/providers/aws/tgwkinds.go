package aws

import (
	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/plan"
)

// The Transit Gateway kinds share one executor (tgwexec.go), which switches on the change's kind.
func init() {
	executors.Register(func(p *Provider) apply.Executor { return tgwExecutor{p} },
		plan.KindTransitGateway, plan.KindTGWRouteTable, plan.KindTGWAttachment, plan.KindTGWVPCRoute)
}
