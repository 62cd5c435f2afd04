package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
)

// completionExamples are the examples of cobra's completion command and its subcommands, one a shell:
// how kubectl's documentation says to load the script now and for every new shell.
var completionExamples = map[string]string{
	"completion": `  source <(meshctl completion bash)
  meshctl completion zsh > "${fpath[1]}/_meshctl"
  meshctl completion fish > ~/.config/fish/completions/meshctl.fish
  meshctl completion powershell | Out-String | Invoke-Expression`,
	"bash": `  source <(meshctl completion bash)
  meshctl completion bash > /etc/bash_completion.d/meshctl    # every new shell (needs bash-completion)`,
	"zsh": `  source <(meshctl completion zsh)
  meshctl completion zsh > "${fpath[1]}/_meshctl"    # every new shell (needs compinit in ~/.zshrc)`,
	"fish": `  meshctl completion fish | source
  meshctl completion fish > ~/.config/fish/completions/meshctl.fish    # every new shell`,
	"powershell": `  meshctl completion powershell | Out-String | Invoke-Expression
  meshctl completion powershell >> $PROFILE    # every new session`,
}

// addCompletion adds cobra's `meshctl completion bash|zsh|fish|powershell` now rather than when it runs,
// so that it carries examples as every other command does.
func (a *App) addCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = completionExamples[c.Name()]
		for _, shell := range c.Commands() {
			shell.Example = completionExamples[shell.Name()]
		}
	}
}

// completeClusterFlag completes --cluster with the names of the clusters of the spec --spec names, as far as
// it decodes: what the user typed so far is enough to read it, and a completion never prints an error.
func completeClusterFlag(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("cluster", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		path, _ := cmd.Flags().GetString("spec")
		if path == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		m, _ := spec.Load(path)
		var names []string
		for _, c := range m.Clusters {
			if strings.HasPrefix(c.Name, toComplete) {
				names = append(names, c.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}

// completeStateAddress completes meshctl state show's ADDRESS with the addresses the state file --state
// names records, as meshctl state list prints them.
func completeStateAddress(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	path, _ := cmd.Flags().GetString("state")
	st, err := readStateFile(cmd.Context(), path)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var addrs []string
	for _, e := range plan.StateEntries(st) {
		if strings.HasPrefix(e.Address, toComplete) {
			addrs = append(addrs, e.Address)
		}
	}
	return addrs, cobra.ShellCompDirectiveNoFileComp
}
