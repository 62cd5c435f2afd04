package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshd-io/meshd/internal/plan"
)

// The commands: each declares its flags, bound to variables that its work function (in the file of its
// name) is called with, and shows real use in its Example. docs/cli.md describes each at length.
func (a *App) commands() []*cobra.Command {
	return []*cobra.Command{
		a.validateCommand(), a.planCommand(), a.applyCommand(false), a.applyCommand(true), a.verifyCommand(),
		a.showCommand(), a.graphCommand(), a.stateCommand(), a.rbacCommand(), a.versionCommand(), a.iamPolicyCommand(),
	}
}

// register declares the flags every command that reads the spec and the state takes.
func (c *common) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.spec, "spec", "", "spec file or directory of *.hcl files")
	fs.StringVar(&c.state, "state", DefaultStatePath, "state file")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&c.stateSecret, "state-secret", "", "use the state meshd keeps in this Secret (NAMESPACE/NAME) of the management cluster, under its Lease lock, instead of a file")
	fs.StringVar(&c.stateContext, "state-context", "", "kubeconfig context of the management cluster holding --state-secret (default: the kubeconfig's current context)")
}

// withCommon declares the common flags on cmd and has it check them before it runs run.
func (a *App) withCommon(cmd *cobra.Command, c *common, run func(ctx context.Context, args []string) int) *cobra.Command {
	c.register(cmd.Flags())
	cmd.RunE = runs(func(ctx context.Context, args []string) int {
		c.stateSet = cmd.Flags().Changed("state")
		if !a.checkStateFlags(c) {
			return ExitError
		}
		return run(ctx, args)
	})
	return cmd
}

func (a *App) validateCommand() *cobra.Command {
	var c common
	return a.withCommon(&cobra.Command{
		Use:   "validate --spec PATH",
		Short: "Check a spec without contacting AWS or Kubernetes",
		Long: `Decodes and checks the spec offline: syntax, unknown blocks and attributes, types, names, IDs, CIDR
blocks, duplicate clusters, namespaces, contexts and VPCs. Checks that need AWS run in plan and apply.`,
		Example: `  meshctl validate --spec mesh.hcl
  meshctl validate --spec specs/    # a directory: its *.hcl files form one spec`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}, &c, func(context.Context, []string) int { return a.validate(&c) })
}

func (a *App) planCommand() *cobra.Command {
	var c common
	var o planFlags
	cmd := a.withCommon(&cobra.Command{
		Use:   "plan --spec PATH",
		Short: "Show what apply would change",
		Long: `Observes AWS and the clusters, diffs them against the spec and the state, and prints what apply
would do, in the order it would do it. With --detailed-exitcode: exit 0 without changes, 2 with changes,
1 on error.`,
		Example: `  meshctl plan --spec mesh.hcl
  meshctl plan --spec mesh.hcl --out mesh.plan && meshctl apply mesh.plan
  meshctl plan --spec mesh.hcl --detailed-exitcode    # exit 2 when there are changes
  meshctl plan --spec mesh.hcl --destroy              # what destroy would remove
  meshctl plan --spec mesh.hcl --costs                # peering and transit_gateway side by side`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}, &c, func(ctx context.Context, _ []string) int { return a.plan(ctx, &c, o) })
	fs := cmd.Flags()
	fs.StringVar(&o.out, "out", "", "write the plan to this file, for 'meshctl apply FILE'")
	fs.BoolVar(&o.json, "json", false, "print the plan as JSON")
	fs.BoolVar(&o.detailedExitcode, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	fs.BoolVar(&o.destroy, "destroy", false, "plan the removal of everything meshd created")
	fs.BoolVar(&o.costs, "costs", false, "also print what each topology (peering, transit_gateway) needs and costs for the spec's members")
	fs.Float64Var(&o.prices.AttachmentHour, "price-attachment-hour", plan.DefaultPrices.AttachmentHour, "USD per Transit Gateway attachment-hour, for --costs")
	fs.Float64Var(&o.prices.ProcessingGB, "price-processing-gb", plan.DefaultPrices.ProcessingGB, "USD per GB a Transit Gateway processes, for --costs")
	fs.Float64Var(&o.prices.InterRegionGB, "price-inter-region-gb", plan.DefaultPrices.InterRegionGB, "USD per GB sent to another region, for --costs")
	return cmd
}

// applyCommand is meshctl apply, or with destroy meshctl destroy.
func (a *App) applyCommand(destroy bool) *cobra.Command {
	var c common
	var autoApprove bool
	cmd := &cobra.Command{
		Use:   "apply --spec PATH | PLANFILE",
		Short: "Make the mesh match the spec, or apply a saved plan",
		Long: `Plans, shows the plan, asks for 'yes' (unless --auto-approve), then executes it. 'meshctl apply PLANFILE'
executes a plan saved with 'meshctl plan --out' exactly, and refuses it when the spec or the state changed since.`,
		Example: `  meshctl apply --spec mesh.hcl
  meshctl apply --spec mesh.hcl --auto-approve
  meshctl plan --spec mesh.hcl --out mesh.plan && meshctl apply mesh.plan
  meshctl apply mesh.plan --state-secret meshd-system/meshd-state`,
	}
	if destroy {
		cmd = &cobra.Command{
			Use:   "destroy --spec PATH",
			Short: "Remove everything meshd created, in reverse order",
			Long: `Removes everything meshd created or adopted, in reverse dependency order, and never what it does not
own. A mesh that meshd keeps needs meshd stopped first, and its state (--state-secret).`,
			Example: `  meshctl plan --spec mesh.hcl --destroy    # preview
  meshctl destroy --spec mesh.hcl
  meshctl destroy --spec mesh.hcl --state-secret meshd-system/meshd-state --auto-approve`,
			ValidArgsFunction: cobra.NoFileCompletions,
		}
	}
	a.withCommon(cmd, &c, func(ctx context.Context, args []string) int { return a.apply(ctx, &c, args, autoApprove, destroy) })
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "skip the interactive approval")
	return cmd
}

func (a *App) verifyCommand() *cobra.Command {
	var c common
	var asJSON, probe bool
	var po probeOptions
	cmd := a.withCommon(&cobra.Command{
		Use:   "verify --spec PATH",
		Short: "Check that every pair of clusters can reach and resolve each other",
		Long: `Checks, for every ordered pair of members, peering, routes, security groups, network ACLs and DNS, and
names the object to fix. It changes nothing. With --probe it also runs a Pod in each cluster that resolves and
connects to every other cluster. Exit 2 when a pair fails.`,
		Example: `  meshctl verify --spec mesh.hcl
  meshctl verify --spec mesh.hcl --probe --probe-timeout 2m
  meshctl verify --spec mesh.hcl --json --state-secret meshd-system/meshd-state`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}, &c, func(ctx context.Context, _ []string) int { return a.verify(ctx, c, asJSON, probe, po) })
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "print the verdicts as JSON")
	fs.BoolVar(&probe, "probe", false, "also run a probe Pod in each cluster that resolves and connects to every other cluster")
	// probeOptions declares its flags on a flag.FlagSet (TestDeployProbeManifests reads their defaults so).
	probeFlags := flag.NewFlagSet("verify", flag.ContinueOnError)
	po.register(probeFlags)
	fs.AddGoFlagSet(probeFlags)
	return cmd
}

func (a *App) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show PLANFILE",
		Short: "Print a saved plan",
		Long:  `Prints a plan saved with 'meshctl plan --out FILE' as plan printed it, or with --json the saved document. It contacts nothing.`,
		Example: `  meshctl show mesh.plan
  meshctl show mesh.plan --json | jq '.changes[].address'`,
		RunE: runs(func(_ context.Context, args []string) int { return a.show(asJSON, args) }),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func (a *App) graphCommand() *cobra.Command {
	var c common
	var destroy bool
	cmd := a.withCommon(&cobra.Command{
		Use:   "graph [--spec PATH | PLANFILE]",
		Short: "Print the plan's dependency graph in DOT",
		Long: `Prints, as terraform graph does, the dependency graph of the plan meshctl plan would make with --spec, or
of a plan saved with 'meshctl plan --out'. Pipe it to Graphviz's dot for a picture.`,
		Example: `  meshctl graph --spec mesh.hcl | dot -Tsvg > plan.svg
  meshctl graph mesh.plan | dot -Tpng > plan.png`,
	}, &c, func(ctx context.Context, args []string) int { return a.graph(ctx, c, destroy, args) })
	cmd.Flags().BoolVar(&destroy, "destroy", false, "graph the plan that removes everything meshd created (with --spec)")
	return cmd
}

func (a *App) stateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:                   "state SUBCOMMAND",
		DisableFlagsInUseLine: true,
		Short:                 "Print what the state records, or hand it to meshd's state Secret",
		Example: `  meshctl state list
  meshctl state show 'route[tidb-2:rtb-0a1b2c3d4e5f60718:10.1.0.0/16]' --state meshd.state.json
  meshctl state push --state meshd.state.json --state-secret meshd-system/meshd-state`,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2, // cobra's default for unknown commands
		// cobra would answer a missing or unknown subcommand with help and exit 0.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return a.usage(cmd)
			}
			hint := ""
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return fmt.Errorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), hint)
		},
	}
	var listPath, showPath string
	list := &cobra.Command{
		Use:               "list",
		Short:             "Print every address the state records",
		Example:           `  meshctl state list --state meshd.state.json`,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runs(func(ctx context.Context, args []string) int { return a.stateCmd(ctx, "list", listPath, args) }),
	}
	list.Flags().StringVar(&listPath, "state", DefaultStatePath, "state file")
	show := &cobra.Command{
		Use:   "show ADDRESS",
		Short: "Print what the state records for one address",
		Example: `  meshctl state show 'member[tidb-1]'
  meshctl state show 'corefile[tidb-2]' --state meshd.state.json`,
		ValidArgsFunction: completeStateAddress,
		RunE:              runs(func(ctx context.Context, args []string) int { return a.stateCmd(ctx, "show", showPath, args) }),
	}
	show.Flags().StringVar(&showPath, "state", DefaultStatePath, "state file")
	cmd.AddCommand(list, show, a.statePushCommand())
	return cmd
}

func (a *App) statePushCommand() *cobra.Command {
	var c common
	var force bool
	cmd := &cobra.Command{
		Use:   "push --state FILE --state-secret NAMESPACE/NAME",
		Short: "Copy the local state file into meshd's state Secret",
		Long: `Copies a local state file into the Secret the daemon keeps its state in, under the Secret's Lease lock.
It refuses another mesh's state, another lineage or a newer serial in the Secret, unless --force.`,
		Example:           `  meshctl state push --state meshd.state.json --state-secret meshd-system/meshd-state --state-context mgmt`,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runs(func(ctx context.Context, args []string) int { return a.statePush(ctx, c, force, args) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&c.state, "state", DefaultStatePath, "the local state file to push")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&c.stateSecret, "state-secret", "", "the Secret (NAMESPACE/NAME) of the management cluster to push it into (required)")
	fs.StringVar(&c.stateContext, "state-context", "", "kubeconfig context of the management cluster (default: the kubeconfig's current context)")
	fs.BoolVar(&force, "force", false, "replace the Secret's state even if it is another lineage or newer")
	return cmd
}

// rbacFlags are meshctl rbac's flags.
type rbacFlags struct {
	spec, cluster, subject, stateSecret, leaseNamespace, leaseName string
	all, management                                                bool
}

func (a *App) rbacCommand() *cobra.Command {
	var f rbacFlags
	cmd := &cobra.Command{
		Use:   "rbac --spec PATH (--cluster NAME | --all | --management)",
		Short: "Print the Kubernetes RBAC meshd needs for the spec",
		Long: `Prints, as YAML that 'kubectl apply -f -' takes, the Roles, ClusterRoles and bindings meshd's identity needs
in one member cluster (--cluster), in every member (--all), or in the management cluster (--management).`,
		Example: `  meshctl rbac --spec mesh.hcl --cluster tidb-1 | kubectl --context tidb-1-admin apply -f -
  meshctl rbac --spec mesh.hcl --all --subject User:meshd
  meshctl rbac --spec mesh.hcl --management --state-secret meshd-system/meshd-state`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runs(func(context.Context, []string) int { return a.rbac(f) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&f.spec, "spec", "", "spec file or directory of *.hcl files")
	fs.StringVar(&f.cluster, "cluster", "", "the member cluster to print the RBAC of")
	fs.BoolVar(&f.all, "all", false, "print every member's RBAC (each document names its cluster)")
	fs.BoolVar(&f.management, "management", false, "print what the daemon needs in the management cluster: its Leases and state Secret")
	fs.StringVar(&f.subject, "subject", "", "who the roles are bound to: User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME (default "+
		defaultMemberSubject+", or "+defaultManagementSubject+" with --management)")
	fs.StringVar(&f.stateSecret, "state-secret", defaultStateSecret, "with --management: the daemon's --state-secret (NAMESPACE/NAME)")
	fs.StringVar(&f.leaseNamespace, "leader-elect-namespace", defaultLeaseNamespace, "with --management: the daemon's --leader-elect-namespace")
	fs.StringVar(&f.leaseName, "leader-elect-name", "", "with --management: the daemon's --leader-elect-name (default meshd-<mesh>)")
	completeClusterFlag(cmd)
	return cmd
}

func (a *App) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "version",
		Short:             "Print meshctl's version and the plan and state format versions",
		Example:           `  meshctl version`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runs(func(context.Context, []string) int { return a.version() }),
	}
}

func (a *App) iamPolicyCommand() *cobra.Command {
	var specPath, cluster string
	cmd := &cobra.Command{
		Use:   "iam-policy --spec PATH [--cluster NAME]",
		Short: "Print the IAM policy meshd needs for a spec",
		Long: `Prints, as JSON, the IAM policy the identity applying the spec needs, from the spec alone: meshd's own
credentials, or with --cluster the identity that cluster's AWS calls are made with (its assume_role).`,
		Example: `  meshctl iam-policy --spec mesh.hcl > meshd-policy.json
  meshctl iam-policy --spec mesh.hcl --cluster tidb-3    # the policy of tidb-3's assume_role`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runs(func(context.Context, []string) int { return a.iamPolicy(specPath, cluster) }),
	}
	cmd.Flags().StringVar(&specPath, "spec", "", "spec file or directory of *.hcl files")
	cmd.Flags().StringVar(&cluster, "cluster", "", "print the policy of the role this cluster's assume_role names (default: meshd's own credentials)")
	completeClusterFlag(cmd)
	return cmd
}
