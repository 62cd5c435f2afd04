package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"sigs.k8s.io/yaml"

	"github.com/meshd-io/meshd/internal/daemon"
	"github.com/meshd-io/meshd/internal/testenv"
)

const alertsFile = "../../charts/meshd/files/alerts.yaml"

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func loadAlertRules(t *testing.T) map[string]alertRule {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]alertRule{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r
		}
	}
	return out
}

// TestAlertRulesNameMeshdMetrics (no binaries needed): every meshd_* metric an alert reads is one meshd
// exports, and the throttling alert matches every error code the AWS SDK retries as throttling.
func TestAlertRulesNameMeshdMetrics(t *testing.T) {
	rules := loadAlertRules(t)
	var page bytes.Buffer
	if _, err := daemon.NewMetrics().WriteTo(&page); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		for _, name := range regexp.MustCompile(`meshd_[a-z_]+`).FindAllString(r.Expr, -1) {
			if !strings.Contains(page.String(), "# TYPE "+name+" ") {
				t.Errorf("%s reads %s, which meshd does not export", r.Alert, name)
			}
		}
	}
	throttled := rules["MeshdAWSThrottled"].Expr
	m := regexp.MustCompile(`code=~"([^"]+)"`).FindStringSubmatch(throttled)
	if m == nil {
		t.Fatalf("MeshdAWSThrottled: no code=~ matcher in %q", throttled)
	}
	codes := regexp.MustCompile("^(?:" + m[1] + ")$")
	for code := range retry.DefaultThrottleErrorCodes {
		if !codes.MatchString(code) {
			t.Errorf("MeshdAWSThrottled does not match %s, which the AWS SDK retries as throttling", code)
		}
	}
}

// sample is one series of a /metrics page.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

func (s sample) key() string { return s.name + labelString(s.labels) }

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// metricsPage is a /metrics page and when it was read.
type metricsPage struct {
	at      time.Time
	samples map[string]sample
}

// parseMetrics reads the text exposition format meshd writes: name{k="v",...} value.
func parseMetrics(t *testing.T, text string) map[string]sample {
	t.Helper()
	out := map[string]sample{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		head := line[:i]
		brace := strings.IndexByte(head, '{')
		if brace < 0 {
			s.name = head
		} else {
			s.name = head[:brace]
			rest := head[brace+1 : len(head)-1]
			for rest != "" {
				eq := strings.IndexByte(rest, '=')
				key := rest[:eq]
				val, err := strconv.QuotedPrefix(rest[eq+1:])
				if err != nil {
					t.Fatalf("metrics line %q: %v", line, err)
				}
				s.labels[key], _ = strconv.Unquote(val)
				rest = strings.TrimPrefix(rest[eq+1+len(val):], ",")
			}
		}
		out[s.key()] = s
	}
	return out
}

func (m *meshdProc) page(t *testing.T) metricsPage {
	t.Helper()
	resp, err := http.Get(m.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return metricsPage{at: time.Now(), samples: parseMetrics(t, string(body))}
}

// throttlingProxy stands between meshd and moto and, while on, answers every other DescribeRouteTables request
// as EC2 does when it throttles (503 RequestLimitExceeded): moto never throttles. One operation, every other
// attempt: each observation of AWS (every region reads its route tables) counts a throttled attempt that the
// SDK's retry then gets through, however few calls meshd makes (it observes AWS in the background, once an
// interval), so the operation's throttled counter rises in every window of the failure pages.
type throttlingProxy struct {
	on, n atomic.Int64
	srv   *httptest.Server
}

func newThrottlingProxy(t *testing.T, target string) *throttlingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &throttlingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if p.on.Load() == 1 && strings.Contains(string(body), "Action=DescribeRouteTables&") && p.n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// Where the pages go on promtool's time line, in 1-minute steps: the last healthy page for baselineSteps,
// then one failure page a step, then the last failure page held (the meshd stopped succeeding).
const (
	baselineSteps = 10
	alertSteps    = 40
)

// TestAlertRulesOnSandboxMetrics: the alert rules, checked by promtool check rules, fire as promtool test rules
// evaluates them on series taken from /metrics pages meshd wrote on the sandbox: a healthy mesh (no alert),
// then a NACL deny entry that meshd cannot repair (MeshdPathFailing after 5 minutes, not before, naming
// from, to and layer), a Corefile reverted three times (MeshdDriftKeepsComingBack, from the counter's first
// sample), EC2 throttling injected in front of moto (MeshdAWSThrottled), and the same meshd's last success
// held while time passes (MeshdNoSuccessfulPass). The leader rules run on meshd_leader as the page shows it,
// for two replicas: both leading, neither, one.
func TestAlertRulesOnSandboxMetrics(t *testing.T) {
	promtool := testenv.Require(t, testenv.BinPromtool)
	rulesPath, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	e := newE2E(t)
	proxy := newThrottlingProxy(t, e.sb.MotoEndpoint)
	e.env = append(e.env, "AWS_ENDPOINT_URL="+proxy.srv.URL)
	m := e.start("--interval", "2s", "--state", e.state)
	e.waitFor(2*time.Minute, "every cluster resolving every other cluster's Pod", e.resolvesAll)
	pathsFailing := func(p metricsPage) (n, total int) {
		for _, s := range p.samples {
			if s.name == "meshd_path_ok" {
				total++
				if s.value == 0 {
					n++
				}
			}
		}
		return n, total
	}
	var healthy metricsPage
	e.waitFor(time.Minute, "every path checked and passing", func() bool {
		healthy = m.page(t)
		n, total := pathsFailing(healthy)
		return n == 0 && total > 0
	})

	// Break the mesh three ways.
	c1, c3 := e.sb.Clusters[0], e.sb.Clusters[2]
	client, n1 := e.ec2(c1.Name)
	ctx := context.Background()
	acls, err := client.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{n1.VPCID}}}})
	if err != nil || len(acls.NetworkAcls) == 0 {
		t.Fatalf("network ACLs of %s: %v", n1.VPCID, err)
	}
	if _, err := client.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: acls.NetworkAcls[0].NetworkAclId, RuleNumber: aws.Int32(90),
		Egress: aws.Bool(true), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionDeny, CidrBlock: aws.String(c3.CIDR)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		e.revertCorefile(c1.Name)
		e.waitFor(30*time.Second, "tidb-1's Corefile restored", func() bool { return strings.Contains(e.corefile(c1.Name), c3.Namespace+".svc.cluster.local:53") })
	}
	proxy.on.Store(1)
	e.waitFor(time.Minute, "the NACL path failing, the repeated drift and throttling on /metrics", func() bool {
		return m.metric(`meshd_path_ok{from="tidb-1",layer="nacl",to="tidb-3"}`) == 0 &&
			m.metric(`meshd_drift_repeated_total{kind="corefile"}`) >= 1 &&
			m.metricSum(func(s string) bool {
				return strings.HasPrefix(s, "meshd_api_errors_total{") && strings.Contains(s, `code="RequestLimitExceeded"`)
			}) > 0
	})
	var failing []metricsPage
	for len(failing) < 16 {
		failing = append(failing, m.page(t))
		time.Sleep(1500 * time.Millisecond)
	}
	e.kill(m, syscall.SIGTERM)

	// The healthy page must not fire anything, or the test below would say nothing about the rules.
	for _, s := range healthy.samples {
		if strings.HasPrefix(s.name, "meshd_drift_repeated") || strings.HasPrefix(s.name, "meshd_api_errors") {
			t.Fatalf("the healthy page already has %s", s.key())
		}
	}
	staleAfter := healthy.samples["meshd_success_stale_after_seconds{}"].value
	if last := healthy.samples["meshd_last_success_timestamp_seconds{}"].value; last == 0 || float64(healthy.at.Unix())-last > staleAfter || staleAfter == 0 {
		t.Fatalf("the healthy page: last success %v at %v, stale after %v", last, healthy.at.Unix(), staleAfter)
	}

	tl := buildTimeline(healthy, failing)
	rules := loadAlertRules(t)
	scrape := map[string]string{"namespace": "meshd-system", "job": "meshd", "pod": "meshd-0"}
	last := baselineSteps + len(failing) - 1
	var cases []string
	expect := func(step int, alert string, firing []map[string]string) {
		var b strings.Builder
		fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: %s\n", step, alert)
		if len(firing) == 0 {
			b.WriteString("        exp_alerts: []\n")
		} else {
			b.WriteString("        exp_alerts:\n")
			for _, labels := range firing {
				all := map[string]string{}
				for k, v := range labels {
					all[k] = v
				}
				for k, v := range rules[alert].Labels {
					all[k] = v
				}
				fmt.Fprintf(&b, "          - exp_labels: %s\n            exp_annotations: %s\n", yamlFlow(all), yamlFlow(expandAnnotations(rules[alert].Annotations, all)))
			}
		}
		cases = append(cases, b.String())
	}
	withScrape := func(l map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range l {
			out[k] = v
		}
		for k, v := range scrape {
			out[k] = v
		}
		return out
	}

	// MeshdPathFailing: nothing on the healthy mesh, nothing 4 minutes into the failure (for: 5m), then
	// every path that failed on each of the last 6 pages.
	expect(baselineSteps-1, "MeshdPathFailing", nil)
	expect(baselineSteps+4, "MeshdPathFailing", nil)
	var paths []map[string]string
	for _, s := range failing[len(failing)-1].samples {
		if s.name != "meshd_path_ok" {
			continue
		}
		zero := true
		for step := last - 5; step <= last; step++ {
			zero = zero && tl.value(s.key(), step) == 0
		}
		if zero {
			paths = append(paths, withScrape(s.labels))
		}
	}
	if !slices.ContainsFunc(paths, func(l map[string]string) bool {
		return l["from"] == "tidb-1" && l["to"] == "tidb-3" && l["layer"] == "nacl"
	}) {
		t.Fatalf("tidb-1 -> tidb-3 nacl did not fail on the last 6 pages: %v", paths)
	}
	expect(last, "MeshdPathFailing", paths)

	// MeshdDriftKeepsComingBack: from the first page that has the counter.
	expect(baselineSteps-1, "MeshdDriftKeepsComingBack", nil)
	var kinds []map[string]string
	for _, s := range failing[1].samples {
		if s.name == "meshd_drift_repeated_total" {
			kinds = append(kinds, withScrape(s.labels))
		}
	}
	expect(baselineSteps+1, "MeshdDriftKeepsComingBack", kinds)

	// MeshdAWSThrottled: each operation whose throttled attempts rose within every 5-minute window of the
	// last 10 minutes.
	expect(baselineSteps-1, "MeshdAWSThrottled", nil)
	var ops []map[string]string
	for _, op := range tl.throttledOps() {
		rising := true
		for step := last - 10; step <= last; step++ {
			rising = rising && tl.throttledRising(op, step)
		}
		if rising {
			ops = append(ops, map[string]string{"namespace": "meshd-system", "job": "meshd", "operation": op})
		}
	}
	if len(ops) == 0 {
		t.Fatalf("no operation was throttled throughout the failure pages")
	}
	expect(last, "MeshdAWSThrottled", ops)

	// MeshdNoSuccessfulPass: not while passes succeed; then with the last success held for three steps.
	expect(baselineSteps-1, "MeshdNoSuccessfulPass", nil)
	expect(last+3, "MeshdNoSuccessfulPass", []map[string]string{scrape})

	var doc strings.Builder
	fmt.Fprintf(&doc, "rule_files:\n  - %s\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n", rulesPath)
	for _, s := range tl.series(scrape) {
		doc.WriteString(s)
	}
	doc.WriteString("    alert_rule_test:\n")
	for _, c := range cases {
		doc.WriteString(c)
	}
	// The leader rules on meshd_leader, as the page shows it, for two replicas.
	leaderLabels := healthy.samples["meshd_leader{}"]
	if leaderLabels.name == "" || leaderLabels.value != 1 {
		t.Fatalf("the page has no meshd_leader 1: %+v", leaderLabels)
	}
	for _, lc := range []struct {
		a, b       int
		two, none  bool
		annotation string
	}{{1, 1, true, false, "both lead"}, {0, 0, false, true, "neither leads"}, {1, 0, false, false, "one leads"}} {
		fmt.Fprintf(&doc, "  # %s\n  - interval: 1m\n    input_series:\n", lc.annotation)
		for i, v := range []int{lc.a, lc.b} {
			fmt.Fprintf(&doc, "      - series: 'meshd_leader{namespace=\"meshd-system\",job=\"meshd\",pod=\"meshd-%d\"}'\n        values: '%d+0x10'\n", i, v)
		}
		doc.WriteString("    alert_rule_test:\n")
		cases = nil
		group := map[string]string{"namespace": "meshd-system", "job": "meshd"}
		for alert, fires := range map[string]bool{"MeshdTwoLeaders": lc.two, "MeshdNoLeader": lc.none} {
			if fires {
				expect(5, alert, []map[string]string{group})
			} else {
				expect(5, alert, nil)
			}
		}
		for _, c := range cases {
			doc.WriteString(c)
		}
	}

	testFile := filepath.Join(t.TempDir(), "alerts_test.yaml")
	if err := os.WriteFile(testFile, []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
		t.Logf("the test file:\n%s", tail(doc.String(), 20000))
	}
	t.Logf("promtool test rules on %d series from %d pages: %d paths, %d drift kinds, %d throttled operations expected to alert",
		len(tl.keys), 1+len(failing), len(paths), len(kinds), len(ops))
}

// timeline is the pages laid out on promtool's time line.
type timeline struct {
	steps []metricsPage // one a step, up to the last failure page
	keys  []string      // every series of any page
}

func buildTimeline(healthy metricsPage, failing []metricsPage) *timeline {
	tl := &timeline{}
	for i := 0; i < baselineSteps; i++ {
		tl.steps = append(tl.steps, healthy)
	}
	tl.steps = append(tl.steps, failing...)
	seen := map[string]bool{}
	for _, p := range tl.steps {
		for k := range p.samples {
			if !seen[k] {
				seen[k] = true
				tl.keys = append(tl.keys, k)
			}
		}
	}
	sort.Strings(tl.keys)
	return tl
}

// value is series k at step (-1 when absent); the last page holds after the last step.
func (tl *timeline) value(k string, step int) float64 {
	if step < 0 {
		return -1
	}
	s, ok := tl.steps[min(step, len(tl.steps)-1)].samples[k]
	if !ok {
		return -1
	}
	return s.value
}

// timestamps are the gauges holding a Unix time: on the time line each keeps the age it had on its page (the
// time of the step minus that age), and the last page's time is held after it (no success since).
var timestamps = map[string]bool{"meshd_last_success_timestamp_seconds": true, "meshd_start_timestamp_seconds": true}

// series renders every series as a promtool input series over alertSteps steps, with the scrape's labels.
func (tl *timeline) series(scrape map[string]string) []string {
	var out []string
	for _, k := range tl.keys {
		var name string
		var labels map[string]string
		var vals []string
		for step := 0; step <= alertSteps; step++ {
			i := min(step, len(tl.steps)-1)
			p := tl.steps[i]
			s, ok := p.samples[k]
			if !ok {
				vals = append(vals, "_")
				continue
			}
			name, labels = s.name, s.labels
			v := s.value
			if timestamps[s.name] && v != 0 {
				v = float64(i*60) - (float64(p.at.Unix()) - v)
			}
			vals = append(vals, strconv.FormatFloat(v, 'f', -1, 64))
		}
		all := map[string]string{}
		for k, v := range labels {
			all[k] = v
		}
		for k, v := range scrape {
			all[k] = v
		}
		out = append(out, fmt.Sprintf("      - series: '%s%s'\n        values: '%s'\n", name, labelString(all), strings.Join(vals, " ")))
	}
	return out
}

var throttleCodes = func() map[string]bool {
	m := map[string]bool{}
	for c := range retry.DefaultThrottleErrorCodes {
		m[c] = true
	}
	return m
}()

func (tl *timeline) throttledOps() []string {
	ops := map[string]bool{}
	for _, p := range tl.steps {
		for _, s := range p.samples {
			if s.name == "meshd_api_errors_total" && s.labels["api"] == "aws" && throttleCodes[s.labels["code"]] {
				ops[s.labels["operation"]] = true
			}
		}
	}
	return slices.Sorted(func(yield func(string) bool) {
		for op := range ops {
			if !yield(op) {
				return
			}
		}
	})
}

// throttledRising says whether rate() of one of op's throttled series over 5 minutes is above 0 at step: its
// samples in the window (the steps step-4 to step; the series may begin inside it) rise.
func (tl *timeline) throttledRising(op string, step int) bool {
	for _, k := range tl.keys {
		var vals []float64
		for s := step - 4; s <= step; s++ {
			if s < 0 {
				continue
			}
			if smp, ok := tl.steps[min(s, len(tl.steps)-1)].samples[k]; ok && smp.name == "meshd_api_errors_total" &&
				smp.labels["api"] == "aws" && smp.labels["operation"] == op && throttleCodes[smp.labels["code"]] {
				vals = append(vals, smp.value)
			}
		}
		if len(vals) >= 2 && vals[len(vals)-1] > vals[0] {
			return true
		}
	}
	return false
}

var labelRef = regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \}\}`)

// expandAnnotations fills in {{ $labels.NAME }}, the only template the rules' annotations use.
func expandAnnotations(annotations, labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range annotations {
		out[k] = labelRef.ReplaceAllStringFunc(v, func(ref string) string { return labels[labelRef.FindStringSubmatch(ref)[1]] })
	}
	return out
}

// yamlFlow renders a string map as a YAML flow mapping with JSON-quoted values.
func yamlFlow(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %s", k, strconv.Quote(m[k])))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
