package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// Kind names a resource type; it is the prefix of every address, e.g. route[tidb-1:rtb-0a1:10.2.0.0/16].
type Kind string

// Resource is the Before or After of a change: one object as meshd sees it.
type Resource interface {
	Kind() Kind
	// Attrs lists the attributes the human plan shows, in display order.
	Attrs() []Attr
}

// Attr is one displayed attribute. Unknown marks a value known only after apply; Sensitive marks a value
// that stands for secret content (a hash and key names, never the content itself).
type Attr struct {
	Name      string
	Value     string
	Unknown   bool
	Sensitive bool
}

// Provider names the side of meshd that carries out a kind's changes.
type Provider string

const (
	ProviderAWS  Provider = "aws"
	ProviderKube Provider = "kube"
)

// ObjectRef names a Kubernetes object in a member cluster: where a change's Event goes.
type ObjectRef struct {
	Cluster    string
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// Watch says which Kubernetes objects of a kind the daemon watches, so that their drift is corrected at
// once rather than on the AWS interval.
type Watch struct {
	Cluster    string // the member it is in
	APIVersion string // e.g. "v1"
	Resource   string // plural, e.g. "configmaps"
	Namespace  string
	// Name limits the watch to one object; else OwnedOnly limits it to the objects carrying meshd's label.
	Name      string
	OwnedOnly bool
	// IgnoreForeignAnnotations marks objects that others annotate too (the DNS Service: a user asking
	// MetalLB for an address, MetalLB recording its pool): an update that changes nothing but annotations
	// meshd does not set (MeshdAnnotation) triggers no pass. What it causes, a load balancer's new status, is
	// an update of its own, which then is not held back by the minimum interval behind a useless pass.
	IgnoreForeignAnnotations bool
}

// KindInfo is everything meshd knows about one kind of managed object, in one place. Each kind's file
// registers one in its init; the saved-plan decoder, the plan order, the executor maps, Events, watches and
// the repeated-drift hint are all derived from the registry, so adding a kind is adding a file (see
// docs/architecture.md, "Adding a kind").
type KindInfo struct {
	Kind Kind
	// Address documents the address format, for docs and errors, e.g. "route[<cluster>:<route table>:<cidr>]".
	Address string
	// Rank orders the kinds within a phase of the plan (lower first) and must be unique.
	Rank int
	// First kinds are created and updated before the others, because those wait on them: a peering before
	// the routes through it, a DNS Service (and its load balancer) before the Corefiles that forward to it.
	First bool
	// DeletedLast kinds are deleted after every other delete, because the others use them (a peering after
	// the routes through it).
	DeletedLast bool
	// Provider carries out the kind's changes: its Executors map must have the kind.
	Provider Provider
	// Decode reads a Before or After of the kind from a saved plan (decodeAs[T] for most kinds).
	Decode func(json.RawMessage) (Resource, error)
	// Touches names the Kubernetes object a change touches (for its Event); nil for AWS kinds.
	Touches func(Resource) ObjectRef
	// Watches, when set, lists what the daemon watches for the kind's drift under the spec m.
	Watches func(m *spec.Mesh) []Watch
	// RepeatHint says where to find the other writer when the kind's drift keeps coming back.
	RepeatHint string
	// RBAC lists the Kubernetes permissions the kind's observation, executor and watches need in the
	// member clusters under the spec m (nil for AWS kinds); `meshctl rbac` renders them.
	RBAC func(m *spec.Mesh) []access.Rule
	// IAM lists the AWS permissions the kind's observation and executor need under the spec m (nil for
	// Kubernetes kinds); `meshctl iam-policy` renders them.
	IAM func(m *spec.Mesh) []access.Statement
	// Plan is the kind's part of Compute for a kind registered outside this package: it adds the kind's
	// changes and conflicts to p, from in (its observation in in.Kinds[Kind], a Parts when the kind's I/O
	// is registered in internal/kindio). The kinds here set planner.
	Plan func(in Input, p *Plan)
	// planner is Plan for the kinds of this package, which share the computer's indexes. A planner may
	// cover several kinds (dns: the DNS Services, Corefiles and add-ons); the others leave it nil.
	planner func(c *computer)
	// State, for a kind whose executor records what observation cannot find again, is its part of the
	// state; nil for a kind that records nothing.
	State *Records
}

// Records is a kind's part of the state. Its executor writes the records (apply.Outcome.Record); List and
// Fix are what the rest of meshd does with them, looping over the kinds.
type Records struct {
	// List returns the kind's records in st, each with its address and what `meshctl state show` prints.
	List func(st *state.State) []state.Entry
	// Fix applies p's fixes of the kind's records to st (Plan.FixState): records of objects found to be
	// meshd's, records of objects gone. Nil when the planner makes none.
	Fix func(p *Plan, st *state.State)
	// Upgrade maps the records an older state file kept elsewhere (old is the file's top level, by key,
	// unknown keys included) into the kind's place in st, when the state is read (state.RegisterUpgrade).
	// Nil when every state file meshd wrote keeps the kind's records where they are now.
	Upgrade func(old map[string]json.RawMessage, st *state.State) error
}

// Where is an (access, region) of the members: where an AWS part is read and an AWS change carried out.
type Where struct {
	Access model.Access
	Region string
}

// Parts is what the engine observed of a kind whose I/O is registered in internal/kindio, handed to its
// KindInfo.Plan in Input.Kinds: its AWS parts by (access, region), its Kubernetes parts by cluster. A part
// that could not be read is missing (the planner leaves what is there alone); Unobserved names those
// clusters.
type Parts struct {
	AWS        map[Where]any
	Kube       map[string]any
	Unobserved map[string]bool
}

var registry = map[Kind]KindInfo{}

// addressArgs are the first and the rest of the arguments of a kind's address: for "kind[a:b]", a and b
// (rest is "" for "kind[a]").
func addressArgs(k Kind, addr string) (first, rest string) {
	inner := strings.TrimSuffix(strings.TrimPrefix(addr, string(k)+"["), "]")
	first, rest, _ = strings.Cut(inner, ":")
	return first, rest
}

// Register makes a kind known. It panics on a duplicate kind or rank: both are programming errors, found
// by any test that loads the package.
func Register(k KindInfo) {
	if _, dup := registry[k.Kind]; dup {
		panic(fmt.Sprintf("plan: kind %q registered twice", k.Kind))
	}
	for _, other := range registry {
		if other.Rank == k.Rank {
			panic(fmt.Sprintf("plan: kinds %q and %q have the same rank %d", other.Kind, k.Kind, k.Rank))
		}
	}
	registry[k.Kind] = k
	if k.State != nil && k.State.Upgrade != nil {
		state.RegisterUpgrade(string(k.Kind), k.State.Upgrade)
	}
}

// Lookup returns a registered kind.
func Lookup(k Kind) (KindInfo, bool) {
	info, ok := registry[k]
	return info, ok
}

// Kinds returns every registered kind, by rank.
func Kinds() []KindInfo {
	out := make([]KindInfo, 0, len(registry))
	for _, k := range registry {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out
}

// KindsOf returns the registered kinds a provider carries out, by rank.
func KindsOf(p Provider) []Kind {
	var out []Kind
	for _, k := range Kinds() {
		if k.Provider == p {
			out = append(out, k.Kind)
		}
	}
	return out
}

// Touched names the Kubernetes object a change touches, if its kind touches one.
func Touched(ch Change) (ObjectRef, bool) {
	info, ok := registry[ch.Kind]
	if !ok || info.Touches == nil {
		return ObjectRef{}, false
	}
	res := ch.After
	if res == nil {
		res = ch.Before
	}
	if res == nil {
		return ObjectRef{}, false
	}
	return info.Touches(res), true
}

// WatchesOf lists what the daemon watches in one member cluster for the spec m, over every kind.
func WatchesOf(m *spec.Mesh, cluster string) []Watch {
	var out []Watch
	for _, k := range Kinds() {
		if k.Watches != nil {
			for _, w := range k.Watches(m) {
				if w.Cluster == cluster {
					out = append(out, w)
				}
			}
		}
	}
	return out
}

// RepeatHint says where to look for whoever keeps undoing a kind's objects.
func RepeatHint(k Kind) string {
	if info, ok := registry[k]; ok {
		return info.RepeatHint
	}
	return ""
}

// decodeAs decodes a resource of type T.
func decodeAs[T Resource](raw json.RawMessage) (Resource, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// Hints shared by the kinds.
const (
	hintAWS  = "AWS CloudTrail names who deleted or changed it"
	hintKube = "the object's managedFields name the last writer: kubectl get -o yaml --show-managed-fields"
)
