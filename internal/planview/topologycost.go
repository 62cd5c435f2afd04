package planview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/meshd-io/meshd/internal/plan"
)

// RenderTopologyCosts prints the topologies side by side for the same members (meshctl plan --costs): the
// counts against the quotas (a "!" marks one exceeded) and the prices, so that the topology is chosen with
// numbers.
func RenderTopologyCosts(w io.Writer, members, regions int, prices plan.Prices, costs []plan.TopologyCost) error {
	fmt.Fprintf(w, "\nTopologies for %d clusters in %d regions (prices: $%.3f per attachment-hour, $%.3f per GB processed, $%.3f per GB across regions):\n\n",
		members, regions, prices.AttachmentHour, prices.ProcessingGB, prices.InterRegionGB)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, cell func(plan.TopologyCost) string) {
		cells := []string{"  " + name}
		for _, c := range costs {
			cells = append(cells, cell(c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	quota := func(n, q int) string {
		mark := ""
		if q > 0 && n > q {
			mark = " !"
		}
		return fmt.Sprintf("%d / %d%s", n, q, mark)
	}
	row("", func(c plan.TopologyCost) string { return c.Topology })
	row("peerings", func(c plan.TopologyCost) string { return fmt.Sprint(c.Peerings) })
	row("peerings per VPC", func(c plan.TopologyCost) string {
		if c.Gateways > 0 {
			return quota(0, c.Quotas.PeeringsPerVPC)
		}
		return quota(c.PeeringsPerVPC, c.Quotas.PeeringsPerVPC)
	})
	row("routes per route table", func(c plan.TopologyCost) string { return quota(c.RoutesPerTable, c.Quotas.RoutesPerRouteTable) })
	row("rules per group", func(c plan.TopologyCost) string { return quota(c.RulesPerGroup, c.Quotas.InboundRulesPerGroup) })
	row("gateways", func(c plan.TopologyCost) string { return fmt.Sprint(c.Gateways) })
	row("attachments", func(c plan.TopologyCost) string { return fmt.Sprint(c.Attachments) })
	row("attachment-hours a month", func(c plan.TopologyCost) string {
		return fmt.Sprintf("%d ($%.2f)", c.Attachments*plan.HoursPerMonth, c.MonthlyUSD)
	})
	row("per GB, same region", func(c plan.TopologyCost) string { return fmt.Sprintf("$%.3f", c.PerGBSameRegion) })
	row("per GB, across regions", func(c plan.TopologyCost) string { return fmt.Sprintf("$%.3f", c.PerGBAcrossRegions) })
	return tw.Flush()
}
