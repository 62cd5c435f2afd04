package access

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// PolicyVersion is the IAM policy language version every document meshd prints uses.
const PolicyVersion = "2012-10-17"

// Policy is an IAM identity policy document as AWS reads it.
type Policy struct {
	Version   string            `json:"Version"`
	Statement []PolicyStatement `json:"Statement"`
}

// PolicyStatement is one statement of a Policy. meshd only allows: there is no Deny.
type PolicyStatement struct {
	Sid       string                         `json:"Sid"`
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// IAMPolicy turns statements into a policy document: Sids derived from each statement's Why (the words
// before its first colon or full stop, CamelCased, with a number added when two statements share one),
// actions and resources sorted and deduplicated, and statements that differ only in their actions, or only
// in their resources, merged. Statements are merged only when the result allows nothing that one of them
// did not (same Why and condition, and the same resources or the same actions): merging A-on-R1 with B-on-R2
// into {A,B}-on-{R1,R2} would allow A on R2. The same statements in any order give the same document.
func IAMPolicy(stmts []Statement) Policy {
	type group struct {
		base      string
		actions   []string
		resources []string
		cond      map[string]map[string][]string
	}
	var gs []group
	for _, s := range stmts {
		if len(s.Actions) == 0 {
			continue
		}
		res := s.Resources
		if len(res) == 0 {
			res = []string{"*"}
		}
		gs = append(gs, group{base: sidOf(s.Why, s.Sid), actions: sortedSet(s.Actions), resources: sortedSet(res), cond: normCondition(s.Condition)})
	}
	key := func(g group, parts ...string) string {
		c, _ := json.Marshal(g.cond) // maps marshal with sorted keys
		return g.base + "\x00" + string(c) + "\x00" + strings.Join(parts, "\x01")
	}
	merge := func(gs []group, by func(group) string, union func(dst *group, src group)) []group {
		var out []group
		at := map[string]int{}
		for _, g := range gs {
			k := by(g)
			if i, ok := at[k]; ok {
				union(&out[i], g)
				continue
			}
			at[k] = len(out)
			out = append(out, g)
		}
		return out
	}
	// Same resources: union of actions; then same actions: union of resources. Sorting first makes the
	// result independent of the input order.
	sortGroups := func(gs []group) {
		sort.SliceStable(gs, func(i, j int) bool {
			return key(gs[i], gs[i].actions...)+"\x02"+strings.Join(gs[i].resources, ",") < key(gs[j], gs[j].actions...)+"\x02"+strings.Join(gs[j].resources, ",")
		})
	}
	sortGroups(gs)
	gs = merge(gs, func(g group) string { return key(g, g.resources...) }, func(dst *group, src group) {
		dst.actions = sortedSet(append(dst.actions, src.actions...))
	})
	sortGroups(gs)
	gs = merge(gs, func(g group) string { return key(g, g.actions...) }, func(dst *group, src group) {
		dst.resources = sortedSet(append(dst.resources, src.resources...))
	})
	sortGroups(gs)

	p := Policy{Version: PolicyVersion, Statement: []PolicyStatement{}}
	count := map[string]int{}
	for _, g := range gs {
		count[g.base]++
		sid := g.base
		if n := count[g.base]; n > 1 {
			sid = fmt.Sprintf("%s%d", g.base, n)
		}
		p.Statement = append(p.Statement, PolicyStatement{Sid: sid, Effect: "Allow", Action: g.actions, Resource: g.resources, Condition: g.cond})
	}
	return p
}

// Actions lists every action the policy allows, sorted, each once.
func (p Policy) Actions() []string {
	var out []string
	for _, s := range p.Statement {
		out = append(out, s.Action...)
	}
	return sortedSet(out)
}

// RenderIAM writes the policy document of stmts as indented JSON, for `meshctl iam-policy`.
func RenderIAM(w io.Writer, stmts []Statement) error {
	b, err := json.MarshalIndent(IAMPolicy(stmts), "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// sidOf is the Sid of a statement: sid when set, else the first clause of why (up to ':' or '.'),
// CamelCased and stripped to letters and digits (what IAM accepts in a Sid).
func sidOf(why, sid string) string {
	text := sid
	if text == "" {
		text = why
		if i := strings.IndexAny(text, ":."); i >= 0 {
			text = text[:i]
		}
	}
	text = strings.NewReplacer("'", "", "\u2019", "").Replace(text) // "meshd's tag" is MeshdsTag, not MeshdSTag
	var b strings.Builder
	for _, word := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		rs := []rune(word)
		b.WriteRune(unicode.ToUpper(rs[0]))
		b.WriteString(string(rs[1:]))
	}
	if b.Len() == 0 {
		return "Meshd"
	}
	return b.String()
}

func sortedSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func normCondition(c map[string]map[string][]string) map[string]map[string][]string {
	if len(c) == 0 {
		return nil
	}
	out := map[string]map[string][]string{}
	for op, keys := range c {
		out[op] = map[string][]string{}
		for k, v := range keys {
			out[op][k] = sortedSet(v)
		}
	}
	return out
}
