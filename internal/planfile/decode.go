// Package planfile reads saved plans (meshctl plan --out, meshctl apply FILE): the JSON document
// planview.RenderJSON writes, with each change's Before and After decoded through its kind's registration.
// Plans themselves are data (package plan) and know nothing of files.
package planfile

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/meshd-io/meshd/internal/plan"
)

// Decode reads a saved plan.
func Decode(r io.Reader) (*plan.Plan, error) {
	// The document is a plan.Plan, except that a change's Before and After are interfaces, which only their
	// kind knows how to decode: the changes are read raw (the outer field wins over the embedded one).
	type fields plan.Plan
	var doc struct {
		*fields
		Changes []rawChange `json:"changes"`
	}
	doc.fields = &fields{}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a meshd plan: %w", err)
	}
	p := (*plan.Plan)(doc.fields)
	if doc.Changes != nil {
		p.Changes = make([]plan.Change, 0, len(doc.Changes)) // an empty list stays one, as saved
	}
	for _, rc := range doc.Changes {
		ch, err := rc.change()
		if err != nil {
			return nil, fmt.Errorf("not a meshd plan: %w", err)
		}
		p.Changes = append(p.Changes, ch)
	}
	if p.FormatVersion != plan.FormatVersion {
		return nil, fmt.Errorf("plan format version %d is not supported by this meshd (it reads version %d)", p.FormatVersion, plan.FormatVersion)
	}
	if err := checkGraph(p); err != nil {
		return nil, fmt.Errorf("not a valid meshd plan: %w", err)
	}
	return p, nil
}

// rawChange is a plan.Change as saved, Before and After not decoded yet.
type rawChange struct {
	Action    plan.Action     `json:"action"`
	Address   string          `json:"address"`
	Kind      plan.Kind       `json:"kind"`
	Reason    string          `json:"reason"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	DependsOn []string        `json:"depends_on"`
}

func (raw rawChange) change() (plan.Change, error) {
	before, err := decodeResource(raw.Kind, raw.Before)
	if err != nil {
		return plan.Change{}, fmt.Errorf("%s: before: %w", raw.Address, err)
	}
	after, err := decodeResource(raw.Kind, raw.After)
	if err != nil {
		return plan.Change{}, fmt.Errorf("%s: after: %w", raw.Address, err)
	}
	return plan.Change{Action: raw.Action, Address: raw.Address, Kind: raw.Kind, Reason: raw.Reason,
		Before: before, After: after, DependsOn: raw.DependsOn}, nil
}

// decodeResource turns the JSON of a saved plan back into the concrete resource named by kind.
func decodeResource(kind plan.Kind, raw json.RawMessage) (plan.Resource, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	info, ok := plan.Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("unknown resource kind %q", kind)
	}
	return info.Decode(raw)
}

// checkGraph refuses what Compute never makes but an edited plan file could hold, and apply could not run:
// two changes at one address, and dependencies that wait for each other.
func checkGraph(p *plan.Plan) error {
	deps := map[string][]string{}
	for _, c := range p.Changes {
		if _, dup := deps[c.Address]; dup {
			return fmt.Errorf("two changes at %s", c.Address)
		}
		deps[c.Address] = c.DependsOn
	}
	const (
		visiting = 1
		done     = 2
	)
	mark := map[string]int{}
	var visit func(addr string) error
	visit = func(addr string) error {
		switch mark[addr] {
		case visiting:
			return fmt.Errorf("%s depends on itself through its dependencies", addr)
		case done:
			return nil
		}
		mark[addr] = visiting
		for _, d := range deps[addr] {
			if err := visit(d); err != nil {
				return err
			}
		}
		mark[addr] = done
		return nil
	}
	for _, c := range p.Changes {
		if err := visit(c.Address); err != nil {
			return err
		}
	}
	return nil
}
