package sandbox

import (
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
)

func TestRenderCorefile(t *testing.T) {
	src := DefaultEKSCorefile + `
# meshd: mesh tidb
pingcap-2.svc.cluster.local:53 {
    errors
    cache 30
    forward . 127.0.0.12 127.0.1.12 {
        force_tcp
    }
}
`
	out, err := RenderCorefile(src, RenderOptions{Bind: []string{"127.0.0.11", "127.0.1.11"}, Kubeconfig: "/s/kubeconfig", Context: "pingcap@tidb-1.us-west-1.eksctl.io"})
	if err != nil {
		t.Fatal(err)
	}
	want := `.:53 {
    bind 127.0.0.11 127.0.1.11
    errors
    health 127.0.0.11:8080 {
        lameduck 5s
    }
    ready 127.0.0.11:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig /s/kubeconfig pingcap@tidb-1.us-west-1.eksctl.io
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    prometheus 127.0.0.11:9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload 2s
    loadbalance
}

pingcap-2.svc.cluster.local:53 {
    bind 127.0.0.11 127.0.1.11
    errors
    cache 30
    forward . 127.0.0.12 127.0.1.12 {
        force_tcp
    }
}
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestRenderCorefileCases(t *testing.T) {
	o := RenderOptions{Bind: []string{"127.0.0.11"}, Kubeconfig: "/k", Context: "c"}
	for _, tc := range []struct{ name, in, want string }{
		{"kubernetes without block", ". {\n kubernetes cluster.local\n}\n", ". {\n    bind 127.0.0.11\n    kubernetes cluster.local {\n        kubeconfig /k c\n    }\n}\n"},
		{"old bind and endpoint dropped", ". {\n bind 0.0.0.0\n kubernetes cluster.local {\n  endpoint https://x\n  kubeconfig /a b\n }\n}\n",
			". {\n    bind 127.0.0.11\n    kubernetes cluster.local {\n        kubeconfig /k c\n    }\n}\n"},
		{"two forwards kept in order", "a.:53 {\n forward . 1.1.1.1\n log\n forward x 2.2.2.2\n}\n",
			"a.:53 {\n    bind 127.0.0.11\n    forward . 1.1.1.1\n    log\n    forward x 2.2.2.2\n}\n"},
		{"quoted token", ". {\n template IN A x {\n  answer \"{{ .Name }} 60 IN A 1.2.3.4\"\n }\n}\n",
			". {\n    bind 127.0.0.11\n    template IN A x {\n        answer \"{{ .Name }} 60 IN A 1.2.3.4\"\n    }\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RenderCorefile(tc.in, o)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tc.want)
			}
			if _, err := caddyfile.Parse("x", strings.NewReader(out), nil); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := RenderCorefile(". {\n forward . 1.1.1.1 {\n", o); err == nil {
		t.Error("an unterminated block rendered")
	}
}
