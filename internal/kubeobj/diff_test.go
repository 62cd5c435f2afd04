package kubeobj

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	binding := func(subjects []any, roleRef map[string]any) Object {
		return Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding", Namespace: "ns", Name: "b",
			Content: map[string]any{"roleRef": roleRef, "subjects": subjects}}
	}
	sa := map[string]any{"kind": "ServiceAccount", "name": "meshd", "namespace": "ns"}
	ref := map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
	configMap := func(labels, annotations map[string]string, data map[string]any) Object {
		return Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "c", Labels: labels,
			Annotations: annotations, Content: map[string]any{"data": data}}
	}
	cases := map[string]struct {
		reason string
		want   Object
		got    Object
		diffs  []string
	}{
		"same": {
			reason: "nothing differs",
			want:   binding([]any{sa}, ref), got: binding([]any{sa}, ref),
		},
		"server default in a subject": {
			reason: "the server adds apiGroup to a User subject: a field meshd does not set is no drift",
			want:   binding([]any{map[string]any{"kind": "User", "name": "u"}}, ref),
			got:    binding([]any{map[string]any{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}}, ref),
		},
		"others' labels and annotations": {
			reason: "only want's labels and annotations are compared",
			want:   configMap(map[string]string{"a": "1"}, map[string]string{"n": "x"}, map[string]any{"k": "v"}),
			got:    configMap(map[string]string{"a": "1", "theirs": "2"}, map[string]string{"n": "x", "kubectl": "y"}, map[string]any{"k": "v"}),
		},
		"label changed, annotation missing": {
			reason: "each differing label and annotation is named",
			want:   configMap(map[string]string{"a": "1", "b": "2"}, map[string]string{"n": "x"}, nil),
			got:    configMap(map[string]string{"a": "9", "b": "2"}, nil, nil),
			diffs:  []string{"labels[a]", "annotations[n]"},
		},
		"empty label value": {
			reason: "a label set to \"\" is not the same as no label",
			want:   configMap(map[string]string{"a": ""}, nil, nil),
			got:    configMap(nil, nil, nil),
			diffs:  []string{"labels[a]"},
		},
		"data key added by someone": {
			reason: "data is compared key for key: an extra key is drift",
			want:   configMap(nil, nil, map[string]any{"k": "v"}),
			got:    configMap(nil, nil, map[string]any{"k": "v", "extra": "x"}),
			diffs:  []string{"data[extra]"},
		},
		"data value changed": {
			reason: "the key is named, not the value",
			want:   configMap(nil, nil, map[string]any{"k": "v"}),
			got:    configMap(nil, nil, map[string]any{"k": "w"}),
			diffs:  []string{"data[k]"},
		},
		"empty data, absent data": {
			reason: "the API server drops an empty map",
			want:   configMap(nil, nil, map[string]any{}),
			got:    Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "c"},
		},
		"map[string]string against JSON": {
			reason: "values are compared normalised",
			want: Object{Kind: "ConfigMap", APIVersion: "v1", Content: map[string]any{
				"data": map[string]string{"k": "v"}}},
			got: configMap(nil, nil, map[string]any{"k": "v"}),
		},
		"int against int64": {
			reason: "a port written as int and read as int64 is the same",
			want:   Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"port": 53}}}},
			got:    Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"port": int64(53)}}}},
		},
		"int-or-string": {
			reason: "53 and \"53\" are different ports to the API",
			want:   Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"port": 53}}}},
			got:    Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"serviceRef": map[string]any{"port": "53"}}}},
			diffs:  []string{"spec.serviceRef.port"},
		},
		"nested field changed": {
			reason: "the path names the field inside the content",
			want:   Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"targetType": "ip", "vpcID": "vpc-1"}}},
			got:    Object{Kind: "TargetGroupBinding", Content: map[string]any{"spec": map[string]any{"targetType": "instance", "vpcID": "vpc-1", "ipAddressType": "ipv4"}}},
			diffs:  []string{"spec.targetType"},
		},
		"subject missing": {
			reason: "lists are compared element by element, and a length change is the list",
			want:   binding([]any{sa, sa}, ref),
			got:    binding([]any{sa}, ref),
			diffs:  []string{"subjects"},
		},
		"subject field changed": {
			reason: "an element's field is named with its index",
			want:   binding([]any{sa}, ref),
			got:    binding([]any{map[string]any{"kind": "ServiceAccount", "name": "other", "namespace": "ns"}}, ref),
			diffs:  []string{"subjects[0].name"},
		},
		"content meshd does not set": {
			reason: "aggregated rules the controller fills in are not meshd's content",
			want: Object{Kind: "ClusterRole", Content: map[string]any{"aggregationRule": map[string]any{
				"clusterRoleSelectors": []any{map[string]any{"matchLabels": map[string]any{"x": "y"}}}}}},
			got: Object{Kind: "ClusterRole", Content: map[string]any{"rules": []any{map[string]any{"verbs": []any{"get"}}},
				"aggregationRule": map[string]any{"clusterRoleSelectors": []any{map[string]any{"matchLabels": map[string]any{"x": "y"}}}}}},
		},
		"absent on the server": {
			reason: "a content field want sets and got lacks",
			want:   binding([]any{sa}, ref),
			got:    Object{Kind: "RoleBinding", Content: map[string]any{"roleRef": ref}},
			diffs:  []string{"subjects"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.diffs, Diff(tc.want, tc.got)); diff != "" {
				t.Errorf("%s: Diff -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNeedsReplace(t *testing.T) {
	secret := func(typ string, immutable bool, value string) Object {
		c := map[string]any{"type": typ, "data": map[string]any{"k": value}}
		if immutable {
			c["immutable"] = true
		}
		return Object{APIVersion: "v1", Kind: "Secret", Namespace: "ns", Name: "s", Content: c}
	}
	ref := func(role string) Object {
		return Object{Kind: "ClusterRoleBinding", Content: map[string]any{"roleRef": map[string]any{"kind": "ClusterRole", "name": role}}}
	}
	cases := map[string]struct {
		reason    string
		want, got Object
		replace   bool
	}{
		"same":                {reason: "nothing to do", want: secret("Opaque", false, "YQ=="), got: secret("Opaque", false, "YQ==")},
		"data changed":        {reason: "a mutable Secret's data changes in place", want: secret("Opaque", false, "Yg=="), got: secret("Opaque", false, "YQ==")},
		"type changed":        {reason: "a Secret's type cannot change", want: secret("kubernetes.io/tls", false, "YQ=="), got: secret("Opaque", false, "YQ=="), replace: true},
		"immutable data":      {reason: "an immutable Secret's data cannot change", want: secret("Opaque", true, "Yg=="), got: secret("Opaque", true, "YQ=="), replace: true},
		"becoming immutable":  {reason: "a mutable Secret may be made immutable in place", want: secret("Opaque", true, "YQ=="), got: secret("Opaque", false, "YQ==")},
		"immutable relabeled": {reason: "labels of an immutable object can change", want: Own(secret("Opaque", true, "YQ=="), "m"), got: secret("Opaque", true, "YQ==")},
		"roleRef changed":     {reason: "a binding's roleRef cannot change", want: ref("a"), got: ref("b"), replace: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := NeedsReplace(tc.want, tc.got); got != tc.replace {
				t.Errorf("%s: NeedsReplace %v, want %v (diffs %v)", tc.reason, got, tc.replace, Diff(tc.want, tc.got))
			}
		})
	}
}

func TestDiffCopy(t *testing.T) {
	role := func(content map[string]any, labels map[string]string) Object {
		return Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "r", Labels: labels, Content: content}
	}
	rule := map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get"}}
	widened := map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get"}, "resourceNames": []any{"x"}}
	agg := map[string]any{"clusterRoleSelectors": []any{map[string]any{"matchLabels": map[string]any{"a": "b"}}}}
	cases := map[string]struct {
		reason string
		want   Object
		got    Object
		diffs  []string
	}{
		"same": {
			reason: "a copy equal to its source",
			want:   role(map[string]any{"rules": []any{rule}}, nil), got: role(map[string]any{"rules": []any{rule}}, nil),
		},
		"others' labels": {
			reason: "labels someone else put on the copy are theirs, as in Diff",
			want:   role(map[string]any{"rules": []any{rule}}, map[string]string{"a": "1"}),
			got:    role(map[string]any{"rules": []any{rule}}, map[string]string{"a": "1", "b": "2"}),
		},
		"field added inside a rule": {
			reason: "resourceNames added to a copied rule changes what it grants: Diff's subset rule would miss it",
			want:   role(map[string]any{"rules": []any{rule}}, nil), got: role(map[string]any{"rules": []any{widened}}, nil),
			diffs: []string{"rules"},
		},
		"source emptied": {
			reason: "a source without rules: the copy's rules must go",
			want:   role(map[string]any{}, nil), got: role(map[string]any{"rules": []any{rule}}, nil),
			diffs: []string{"rules"},
		},
		"aggregation rule on the copy": {
			reason: "a flattened copy must not carry an aggregationRule, or the target's controller rewrites its rules",
			want:   role(map[string]any{"rules": []any{rule}}, nil), got: role(map[string]any{"rules": []any{rule}, "aggregationRule": agg}, nil),
			diffs: []string{"aggregationRule"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.diffs, DiffCopy(tc.want, tc.got)); diff != "" {
				t.Errorf("%s\nDiffCopy (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}
