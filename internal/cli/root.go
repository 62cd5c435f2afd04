package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCode carries a work function's exit code out of cobra's RunE. The work function has already said
// why on stderr, so Main prints nothing more for it.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// runs adapts a work function, which returns meshctl's exit code, to cobra's RunE.
func runs(run func(ctx context.Context, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if code := run(cmd.Context(), args); code != ExitOK {
			return exitCode(code)
		}
		return nil
	}
}

// Main runs meshctl with args (without the program name) and returns the exit code: 0, 1 on any error
// (a usage error too: an unknown command or flag, a missing or extra argument), and 2 where a command
// documents it (plan --detailed-exitcode with changes, verify with a failing pair).
func (a *App) Main(ctx context.Context, args []string) int {
	root := a.newRoot()
	// Never nil: cobra reads os.Args for nil args.
	root.SetArgs(append([]string{}, oneDashLongFlags(root, args)...))
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintf(a.Stderr, "Error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
	return ExitError
}

// usage is what a command that only groups others (meshctl, meshctl state) does without one: print its
// usage on stderr and exit 1, as meshctl always has and kubectl config does.
func (a *App) usage(cmd *cobra.Command) error {
	fmt.Fprint(a.Stderr, cmd.UsageString())
	return exitCode(ExitError)
}

// The commands are listed in the order they are used (validate, plan, apply, ...), not alphabetically.
func init() { cobra.EnableCommandSorting = false }

// newRoot builds meshctl's command tree, as kubectl, helm and eksctl build theirs: one cobra command per
// command, its flags declared with pflag under the names meshctl has always used, flags in any position
// ("--" ends them), `meshctl completion SHELL`, and `--help` with an example on every command.
func (a *App) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshctl",
		Short: "Plan, apply and check a mesh of Kubernetes clusters in AWS VPCs",
		Long: `meshctl plans and applies a meshd spec: VPC peerings, routes and security-group rules between the
clusters' VPCs, and the DNS forwarding that lets each cluster resolve the others' Services.`,
		Example: `  meshctl validate --spec mesh.hcl
  meshctl plan --spec mesh.hcl --out mesh.plan
  meshctl apply mesh.plan
  meshctl verify --spec mesh.hcl`,
		// A work function prints its own errors and a usage error is printed once by Main: cobra prints
		// neither, nor the usage after a runtime error.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	// meshctl --version as meshctl version: the flag makes the root runnable, which cobra would otherwise
	// answer with its help.
	showVersion := root.Flags().Bool("version", false, "print meshctl's version, as meshctl version does")
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if !*showVersion {
			return a.usage(cmd)
		}
		a.version()
		return nil
	}
	root.AddCommand(a.commands()...)
	root.InitDefaultHelpFlag()
	root.InitDefaultHelpCmd()
	if help, _, err := root.Find([]string{"help"}); err == nil {
		help.Example = "  meshctl help plan\n  meshctl help state show"
	}
	a.addCompletion(root)
	return root
}

// oneDashLongFlags rewrites -name and -name=value to --name and --name=value where name is one of
// meshctl's long flags. meshctl parsed its flags with Go's flag package before it used cobra, and that
// package takes one dash as well as two; pflag reads -spec as the shorthands -s -p -e -c. Scripts written
// then keep working. The rewriting stops at "--" and skips a flag's value, whatever it looks like.
func oneDashLongFlags(root *cobra.Command, args []string) []string {
	flags := map[string]*pflag.Flag{"help": {Name: "help", NoOptDefVal: "true"}}
	var collect func(*cobra.Command)
	collect = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { flags[f.Name] = f })
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(root)
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		arg := out[i]
		if arg == "--" {
			break
		}
		if len(arg) < 3 || arg[0] != '-' {
			continue
		}
		if arg[1] != '-' {
			if name, _, _ := strings.Cut(arg[1:], "="); flags[name] == nil {
				continue // a shorthand (-h), or no flag of meshctl's: pflag says which
			}
			out[i] = "-" + arg
		}
		name, _, hasValue := strings.Cut(out[i][2:], "=")
		if f := flags[name]; f != nil && !hasValue && f.NoOptDefVal == "" {
			i++
		}
	}
	return out
}
