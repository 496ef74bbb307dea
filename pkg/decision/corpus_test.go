package decision

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// The scenario corpus: testdata/scenarios/<family>.json, each an array of
// cases whose want is the whole output of the policy function the case
// kind names. See testdata/scenarios/README.md.

var update = flag.Bool("update", false, "rewrite the want fields of testdata/scenarios from the current outputs")

const (
	scenarioDir      = "testdata/scenarios"
	minScenarios     = 150
	scenarioLineWrap = 120
)

// scenarioNow is the decision time of every case; the fixture's *_ms
// fields are offsets from it.
var scenarioNow = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// Case kinds and the function each runs.
const (
	kindDecide     = "decide"     // Decide(input)
	kindManual     = "manual"     // CheckManualFailover(input, target, force)
	kindSwitchover = "switchover" // SwitchoverTarget(input, target)
	kindBackup     = "backup"     // BackupSource(input)
	kindRejoin     = "rejoin"     // PlanRejoin(input)
	kindBackoff    = "backoff"    // RetryBackoff(input.failures, input.base)
)

// familyOutcomes lists, for every family, the outcomes its cases must
// cover between them (see outcomes). A new family must be added here.
var familyOutcomes = map[string][]string{
	"failover":    {"failover", "none"},
	"timelines":   {"failover", "none"},
	"lag":         {"failover", "none"},
	"tags":        {"failover", "none", "sync-set", "nothing"},
	"sync":        {"failover", "none", "sync-set", "nothing", "rejoin"},
	"votes":       {"failover", "none"},
	"streaming":   {"failover", "none", "nothing", "repoint", "rejoin/diverged"},
	"pause":       {"none", "nothing", "rejoin", "rejoin/diverged", "repoint", "sync-set"},
	"standbys":    {"nothing", "rejoin", "rejoin/diverged", "repoint", "sync-set"},
	"manual":      {"allowed", "unsafe-refused", "unsafe-forced", "refused"},
	"rejoin":      {"start", "rewind", "kill+rewind", "fast+rewind"},
	"backoff":     {"backoff"},
	"switchover":  {"chosen", "none"},
	"backup":      {"standby", "primary", "none"},
	"parameters":  {"configure", "nothing", "failover", "rejoin"},
	"maintenance": {"failover", "none", "nothing", "sync-set", "refused", "chosen"},
}

// scenario is one case as stored. Input stays raw so that -update writes
// it back as it was written.
type scenario struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Kind        string          `json:"kind"`
	Target      string          `json:"target,omitempty"`
	Force       bool            `json:"force,omitempty"`
	Input       json.RawMessage `json:"input"`
	Want        json.RawMessage `json:"want,omitempty"`
}

// shardFixture is the input of the decide, manual, switchover and backup
// kinds: the shard settings, the manager group's votes and the nodes with
// what the leader sees of each.
type shardFixture struct {
	SyncMode string   `json:"sync_mode"` // off (default), on, strict
	SyncSet  []string `json:"sync_set"`
	SyncPool []string `json:"sync_pool"`
	MaxLag   int64    `json:"max_lag"` // 0: the default
	Paused   bool     `json:"paused"`  // automatic failover off
	// Voters defaults to 3, DownVotes to Voters.
	DownVotes *int `json:"down_votes"`
	Voters    *int `json:"voters"`
	// PrimaryTimeline defaults, as the leader builds it, to the timeline
	// of the declared primary's sample when that is not in recovery.
	PrimaryTimeline *uint32 `json:"primary_timeline"`
	PrimarySeenAtMS *int64  `json:"primary_seen_at_ms"`
	// PrimaryHistory is the primary's timeline history (its sample's).
	PrimaryHistory []historyFixture `json:"primary_history"`
	StreamGraceMS  *int64           `json:"stream_grace_ms"` // default 2000
	// ParamsVersion is the version of the shard's parameters.
	ParamsVersion uint64        `json:"params_version"`
	Nodes         []nodeFixture `json:"nodes"`
}

// nodeFixture is a node and the leader's view of it. The node has a
// sample when lsn is set; every other sample field needs it.
type nodeFixture struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Priority int      `json:"priority"`
	Tags     []string `json:"tags"`
	Agent    string   `json:"agent"`
	Host     string   `json:"host"` // default: the name
	Port     int      `json:"port"` // default: 5432
	// ParamsApplied is the version of the shard's parameters the node has.
	ParamsApplied uint64 `json:"params_applied"`
	// Maintenance: an operator works on the node.
	Maintenance bool `json:"maintenance"`

	Health        string           `json:"health"`      // omitted: the leader has no view of the node
	InRecovery    *bool            `json:"in_recovery"` // default: role is standby
	LSN           string           `json:"lsn"`         // current on a primary, received and replayed on a standby
	ReplayLSN     string           `json:"replay_lsn"`  // when it differs from lsn (standby)
	Timeline      uint32           `json:"timeline"`    // default 1
	TimelineFrom  string           `json:"timeline_from"`
	TimelineError string           `json:"timeline_error"`
	StreamsFrom   string           `json:"streams_from"` // a node: a streaming receiver on its host and port
	Receiver      *receiverFixture `json:"receiver"`
	SyncNames     string           `json:"sync_standby_names"`
	UpSinceMS     *int64           `json:"up_since_ms"`
	StreamedAtMS  *int64           `json:"streamed_at_ms"`
	// SampleAtMS is when the sample was taken (default: now);
	// Replication a primary's pg_stat_replication rows in it.
	SampleAtMS  *int64               `json:"sample_at_ms"`
	Replication []replicationFixture `json:"replication"`
}

type replicationFixture struct {
	ApplicationName string `json:"application_name"`
	State           string `json:"state"`
}

type receiverFixture struct {
	Status     string `json:"status"`
	SenderHost string `json:"sender_host"`
	SenderPort int    `json:"sender_port"`
	Timeline   uint32 `json:"timeline"` // default: the sample's
}

type rejoinFixture struct {
	Running       bool   `json:"running"`
	StandbySignal bool   `json:"standby_signal"`
	ClusterState  string `json:"cluster_state"`
	Diverged      bool   `json:"diverged"`
}

type backoffFixture struct {
	Failures int    `json:"failures"`
	Base     string `json:"base"` // a Go duration
}

// Outputs as stored: the policy's types with LSNs as text.

type goldCandidate struct {
	Node     string `json:"node"`
	LSN      string `json:"lsn"`
	Timeline uint32 `json:"timeline"`
	Priority int    `json:"priority"`
	Lag      int64  `json:"lag_bytes"`
	Chosen   bool   `json:"chosen,omitempty"`
	Rejected string `json:"rejected,omitempty"`
}

type goldDecision struct {
	Kind       string          `json:"kind"`
	Node       string          `json:"node,omitempty"`
	Reason     string          `json:"reason"`
	Candidates []goldCandidate `json:"candidates,omitempty"`
	SyncNames  []string        `json:"sync_names,omitempty"`
	Diverged   bool            `json:"diverged,omitempty"`
}

type goldManual struct {
	Allowed   bool   `json:"allowed"`
	Unsafe    string `json:"unsafe,omitempty"`
	LossBytes int64  `json:"expected_loss_bytes"`
	Reason    string `json:"reason"`
}

type goldChoice struct {
	Node       string          `json:"node,omitempty"`
	Reason     string          `json:"reason"`
	Candidates []goldCandidate `json:"candidates,omitempty"`
}

type goldRejoin struct {
	Fence  string `json:"fence,omitempty"`
	Rewind bool   `json:"rewind"`
	Reason string `json:"reason"`
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the value")
	}
	return nil
}

func ms(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return scenarioNow.Add(time.Duration(*p) * time.Millisecond)
}

// build turns a shard fixture into the policy's input.
func (f shardFixture) build() (Input, error) {
	in := Input{
		Cluster: "c", Shard: "s", Views: map[string]NodeView{},
		SyncMode: f.SyncMode, SyncSet: f.SyncSet, SyncPool: f.SyncPool, MaxLag: f.MaxLag,
		AutoFailover: !f.Paused, Voters: 3, Now: scenarioNow, StreamGrace: 2 * time.Second,
		PrimarySeenAt: ms(f.PrimarySeenAtMS),
	}
	switch in.SyncMode {
	case "":
		in.SyncMode = meta.SyncOff
	case meta.SyncOff, meta.SyncOn, meta.SyncStrict:
	default:
		return in, fmt.Errorf("sync_mode %q is not off, on or strict", f.SyncMode)
	}
	in.ParamsVersion = f.ParamsVersion
	if f.Voters != nil {
		in.Voters = *f.Voters
	}
	in.DownVotes = in.Voters
	if f.DownVotes != nil {
		in.DownVotes = *f.DownVotes
	}
	if f.StreamGraceMS != nil {
		in.StreamGrace = time.Duration(*f.StreamGraceMS) * time.Millisecond
	}
	if len(f.Nodes) == 0 {
		return in, errors.New("no nodes")
	}
	byName := map[string]meta.Node{}
	for _, nf := range f.Nodes {
		n := meta.Node{Name: nf.Name, Host: nf.Host, Port: nf.Port, Role: meta.Role(nf.Role), Agent: nf.Agent, Tags: nf.Tags, Priority: nf.Priority, ParamsApplied: nf.ParamsApplied, Maintenance: nf.Maintenance}
		if n.Host == "" {
			n.Host = n.Name
		}
		if n.Port == 0 {
			n.Port = 5432
		}
		if err := meta.ValidateRole("role", n.Role); err != nil || n.Name == "" {
			return in, fmt.Errorf("node %q: needs a name and a role of primary or standby", nf.Name)
		}
		if _, dup := byName[n.Name]; dup {
			return in, fmt.Errorf("node %s twice", n.Name)
		}
		byName[n.Name] = n
		in.Nodes = append(in.Nodes, n)
	}
	for _, nf := range f.Nodes {
		v, present, err := nf.view(byName)
		if err != nil {
			return in, fmt.Errorf("node %s: %w", nf.Name, err)
		}
		if present {
			in.Views[nf.Name] = v
		}
	}
	if p := in.primary(); p != nil && f.PrimaryTimeline == nil {
		if s := in.Views[p.Name].Sample; s != nil && !s.InRecovery {
			in.PrimaryTimeline = s.Timeline
		}
	}
	if f.PrimaryTimeline != nil {
		in.PrimaryTimeline = *f.PrimaryTimeline
	}
	for _, h := range f.PrimaryHistory {
		lsn, err := collector.ParseLSN(h.Switch)
		if err != nil {
			return in, fmt.Errorf("primary_history: %w", err)
		}
		in.PrimaryHistory = append(in.PrimaryHistory, collector.TimelineSwitch{Timeline: h.Timeline, Switch: lsn})
	}
	return in, nil
}

// historyFixture is a line of a timeline history.
type historyFixture struct {
	Timeline uint32 `json:"timeline"`
	Switch   string `json:"switch"`
}

func (nf nodeFixture) view(nodes map[string]meta.Node) (NodeView, bool, error) {
	sampled := nf.InRecovery != nil || nf.ReplayLSN != "" || nf.Timeline != 0 || nf.TimelineFrom != "" ||
		nf.TimelineError != "" || nf.StreamsFrom != "" || nf.Receiver != nil || nf.SyncNames != "" || nf.SampleAtMS != nil || len(nf.Replication) > 0
	if sampled && nf.LSN == "" {
		return NodeView{}, false, errors.New("sample fields without lsn")
	}
	if nf.Health == "" {
		if nf.LSN != "" || nf.UpSinceMS != nil || nf.StreamedAtMS != nil {
			return NodeView{}, false, errors.New("a view without health")
		}
		return NodeView{}, false, nil
	}
	v := NodeView{Health: status.Health(nf.Health), UpSince: ms(nf.UpSinceMS), StreamedAt: ms(nf.StreamedAtMS)}
	switch v.Health {
	case status.Healthy, status.Suspect, status.Down, status.Unknown:
	default:
		return v, false, fmt.Errorf("health %q", nf.Health)
	}
	if nf.LSN == "" {
		return v, true, nil
	}
	s := &collector.Sample{At: scenarioNow, InRecovery: nf.Role == string(meta.RoleStandby), Timeline: 1,
		TimelineFrom: nf.TimelineFrom, TimelineError: nf.TimelineError, SyncStandbyNames: nf.SyncNames}
	if nf.InRecovery != nil {
		s.InRecovery = *nf.InRecovery
	}
	if nf.SampleAtMS != nil {
		s.At = ms(nf.SampleAtMS)
	}
	if len(nf.Replication) > 0 && s.InRecovery {
		return v, false, errors.New("replication rows on a node in recovery")
	}
	for _, r := range nf.Replication {
		if r.ApplicationName == "" || r.State == "" {
			return v, false, errors.New("a replication row without application_name or state")
		}
		s.Replicas = append(s.Replicas, collector.Replica{AppName: r.ApplicationName, State: r.State})
	}
	if nf.Timeline != 0 {
		s.Timeline = nf.Timeline
	}
	switch nf.TimelineFrom {
	case "", collector.TimelineFromWALFile, collector.TimelineFromReplay, collector.TimelineFromReceiver, collector.TimelineFromCheckpoint:
	default:
		return v, false, fmt.Errorf("timeline_from %q", nf.TimelineFrom)
	}
	lsn, err := collector.ParseLSN(nf.LSN)
	if err != nil {
		return v, false, err
	}
	if s.InRecovery {
		s.ReceiveLSN, s.ReplayLSN = lsn, lsn
		if nf.ReplayLSN != "" {
			if s.ReplayLSN, err = collector.ParseLSN(nf.ReplayLSN); err != nil {
				return v, false, err
			}
		}
	} else {
		if nf.ReplayLSN != "" {
			return v, false, errors.New("replay_lsn on a node not in recovery")
		}
		s.CurrentLSN = lsn
	}
	switch {
	case nf.StreamsFrom != "" && nf.Receiver != nil:
		return v, false, errors.New("both streams_from and receiver")
	case nf.StreamsFrom != "":
		src, ok := nodes[nf.StreamsFrom]
		if !ok {
			return v, false, fmt.Errorf("streams_from %q: no such node", nf.StreamsFrom)
		}
		s.Receiver = &collector.Receiver{Status: "streaming", SenderHost: src.Host, SenderPort: src.Port, Timeline: s.Timeline}
	case nf.Receiver != nil:
		r := *nf.Receiver
		if r.Status == "" {
			return v, false, errors.New("receiver without a status")
		}
		if r.Timeline == 0 {
			r.Timeline = s.Timeline
		}
		s.Receiver = &collector.Receiver{Status: r.Status, SenderHost: r.SenderHost, SenderPort: r.SenderPort, Timeline: r.Timeline}
	}
	v.Sample = s
	return v, true, nil
}

func goldCandidates(cs []Candidate) []goldCandidate {
	var out []goldCandidate
	for _, c := range cs {
		out = append(out, goldCandidate{Node: c.Node, LSN: c.LSN.String(), Timeline: c.Timeline, Priority: c.Priority, Lag: c.Lag, Chosen: c.Chosen, Rejected: c.Rejected})
	}
	return out
}

func nativeCandidates(gs []goldCandidate) ([]Candidate, error) {
	var out []Candidate
	for _, g := range gs {
		l, err := collector.ParseLSN(g.LSN)
		if err != nil {
			return nil, fmt.Errorf("candidate %s: %w", g.Node, err)
		}
		out = append(out, Candidate{Node: g.Node, LSN: l, Timeline: g.Timeline, Priority: g.Priority, Lag: g.Lag, Chosen: g.Chosen, Rejected: g.Rejected})
	}
	return out, nil
}

// run runs a case: got is the function's output, gold its stored form,
// decodeWant parses a stored want into the function's output type.
func (sc *scenario) run() (got, gold any, decodeWant func(json.RawMessage) (any, error), err error) {
	switch sc.Kind {
	case kindDecide, kindManual, kindSwitchover, kindBackup:
		var f shardFixture
		if err := strictDecode(sc.Input, &f); err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err)
		}
		in, err := f.build()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err)
		}
		switch sc.Kind {
		case kindDecide:
			ds := Decide(in)
			gs := []goldDecision{}
			for _, d := range ds {
				gs = append(gs, goldDecision{Kind: string(d.Kind), Node: d.Node, Reason: d.Reason, Candidates: goldCandidates(d.Candidates), SyncNames: d.SyncNames, Diverged: d.Diverged})
			}
			return ds, gs, func(raw json.RawMessage) (any, error) {
				var gs []goldDecision
				if err := strictDecode(raw, &gs); err != nil {
					return nil, err
				}
				var out []Decision
				for _, g := range gs {
					cs, err := nativeCandidates(g.Candidates)
					if err != nil {
						return nil, err
					}
					out = append(out, Decision{Kind: Kind(g.Kind), Node: g.Node, Reason: g.Reason, Candidates: cs, SyncNames: g.SyncNames, Diverged: g.Diverged})
				}
				return out, nil
			}, nil
		case kindManual:
			c := CheckManualFailover(in, sc.Target, sc.Force)
			return c, goldManual(c), func(raw json.RawMessage) (any, error) {
				var g goldManual
				err := strictDecode(raw, &g)
				return ManualCheck(g), err
			}, nil
		default:
			var c Choice
			if sc.Kind == kindSwitchover {
				c = SwitchoverTarget(in, sc.Target)
			} else {
				c = BackupSource(in)
			}
			return c, goldChoice{Node: c.Node, Reason: c.Reason, Candidates: goldCandidates(c.Candidates)}, func(raw json.RawMessage) (any, error) {
				var g goldChoice
				if err := strictDecode(raw, &g); err != nil {
					return nil, err
				}
				cs, err := nativeCandidates(g.Candidates)
				return Choice{Node: g.Node, Reason: g.Reason, Candidates: cs}, err
			}, nil
		}
	case kindRejoin:
		var f rejoinFixture
		if err := strictDecode(sc.Input, &f); err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err)
		}
		p := PlanRejoin(RejoinFacts(f))
		return p, goldRejoin(p), func(raw json.RawMessage) (any, error) {
			var g goldRejoin
			err := strictDecode(raw, &g)
			return RejoinPlan(g), err
		}, nil
	case kindBackoff:
		var f backoffFixture
		if err := strictDecode(sc.Input, &f); err != nil {
			return nil, nil, nil, fmt.Errorf("input: %w", err)
		}
		base, err := time.ParseDuration(f.Base)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("input: base: %w", err)
		}
		d := RetryBackoff(f.Failures, base)
		return d, d.String(), func(raw json.RawMessage) (any, error) {
			var s string
			if err := strictDecode(raw, &s); err != nil {
				return nil, err
			}
			return time.ParseDuration(s)
		}, nil
	}
	return nil, nil, nil, fmt.Errorf("kind %q is not one of decide, manual, switchover, backup, rejoin, backoff", sc.Kind)
}

// outcomes labels what a case's output does, for the coverage check.
func outcomes(sc *scenario, got any) []string {
	switch g := got.(type) {
	case []Decision:
		if len(g) == 0 {
			return []string{"nothing"}
		}
		var out []string
		for _, d := range g {
			l := string(d.Kind)
			if d.Diverged {
				l += "/diverged"
			}
			out = append(out, l)
		}
		return out
	case ManualCheck:
		switch {
		case g.Allowed && g.Unsafe == "":
			return []string{"allowed"}
		case g.Allowed:
			return []string{"unsafe-forced"}
		case g.Unsafe != "":
			return []string{"unsafe-refused"}
		default:
			return []string{"refused"}
		}
	case Choice:
		switch {
		case g.Node == "":
			return []string{"none"}
		case sc.Kind == kindSwitchover:
			return []string{"chosen"}
		}
		// A backup source: by the chosen node's role.
		var f shardFixture
		_ = strictDecode(sc.Input, &f)
		for _, n := range f.Nodes {
			if n.Name == g.Node {
				return []string{n.Role}
			}
		}
	case RejoinPlan:
		switch {
		case !g.Rewind:
			return []string{"start"}
		case g.Fence == FenceKill:
			return []string{"kill+rewind"}
		case g.Fence == FenceFast:
			return []string{"fast+rewind"}
		default:
			return []string{"rewind"}
		}
	case time.Duration:
		return []string{"backoff"}
	}
	return nil
}

type scenarioFile struct {
	family string
	path   string
	raw    []byte
	cases  []scenario
}

func loadScenarios(t *testing.T) []scenarioFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(scenarioDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []scenarioFile
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := scenarioFile{family: strings.TrimSuffix(filepath.Base(p), ".json"), path: p, raw: raw}
		if err := strictDecode(raw, &f.cases); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		files = append(files, f)
	}
	return files
}

var caseName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// TestScenarios runs every case of the corpus and compares its whole
// output with want. With -update it rewrites the want fields instead.
func TestScenarios(t *testing.T) {
	files := loadScenarios(t)
	total := 0
	seen := map[string]string{}
	for _, f := range files {
		if _, ok := familyOutcomes[f.family]; !ok {
			t.Errorf("%s: family %q is not in familyOutcomes: declare the outcomes its cases must cover", f.path, f.family)
		}
		if len(f.cases) == 0 {
			t.Errorf("%s: no cases", f.path)
		}
		for _, sc := range f.cases {
			total++
			if !caseName.MatchString(sc.Name) {
				t.Errorf("%s: case name %q is not lower-case words joined by '-'", f.family, sc.Name)
			}
			if other, dup := seen[sc.Name]; dup {
				t.Errorf("case name %q is in both %s and %s", sc.Name, other, f.family)
			}
			seen[sc.Name] = f.family
			if strings.TrimSpace(sc.Description) == "" {
				t.Errorf("%s/%s: no description", f.family, sc.Name)
			}
			if sc.Target != "" && sc.Kind != kindManual && sc.Kind != kindSwitchover {
				t.Errorf("%s/%s: target is for manual and switchover cases", f.family, sc.Name)
			}
			if sc.Force && sc.Kind != kindManual {
				t.Errorf("%s/%s: force is for manual cases", f.family, sc.Name)
			}
		}
	}
	if total < minScenarios {
		t.Errorf("the corpus has %d cases, want at least %d", total, minScenarios)
	}
	for fam := range familyOutcomes {
		if !slices.ContainsFunc(files, func(f scenarioFile) bool { return f.family == fam }) {
			t.Errorf("family %s has no file %s/%s.json", fam, scenarioDir, fam)
		}
	}

	for _, f := range files {
		// Every case runs here, whatever -run selects, so that the
		// coverage check and -update see the whole family.
		type result struct {
			got, gold  any
			decodeWant func(json.RawMessage) (any, error)
			err        error
		}
		results := make([]result, len(f.cases))
		covered := map[string]bool{}
		for i := range f.cases {
			sc, r := &f.cases[i], &results[i]
			r.got, r.gold, r.decodeWant, r.err = sc.run()
			if r.err != nil {
				continue
			}
			for _, o := range outcomes(sc, r.got) {
				covered[o] = true
			}
			if *update {
				b, err := json.Marshal(r.gold)
				if err != nil {
					t.Fatal(err)
				}
				sc.Want = b
			}
		}
		t.Run(f.family, func(t *testing.T) {
			for i, sc := range f.cases {
				r := results[i]
				t.Run(sc.Name, func(t *testing.T) {
					if r.err != nil {
						t.Fatal(r.err)
					}
					if *update {
						return
					}
					if len(sc.Want) == 0 {
						t.Fatal("no want; run go test ./pkg/decision -run TestScenarios -update and review it")
					}
					want, err := r.decodeWant(sc.Want)
					if err != nil {
						t.Fatalf("want: %v", err)
					}
					if d := cmp.Diff(want, r.got, cmpopts.EquateEmpty()); d != "" {
						t.Errorf("%s\n(-want +got):\n%s", sc.Description, d)
					}
				})
			}
		})
		var missing []string
		for _, o := range familyOutcomes[f.family] {
			if !covered[o] {
				missing = append(missing, o)
			}
		}
		if len(missing) > 0 {
			t.Errorf("family %s has no case with outcome %s", f.family, strings.Join(missing, ", "))
		}
		formatted, err := formatScenarios(f.cases)
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		switch {
		case bytes.Equal(formatted, f.raw):
		case *update:
			if err := os.WriteFile(f.path, formatted, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("%s is not in its canonical format: run go test ./pkg/decision -run TestScenarios -update", f.path)
		}
	}
}

func formatScenarios(cases []scenario) ([]byte, error) {
	b, err := json.Marshal(cases)
	if err != nil {
		return nil, err
	}
	return formatJSON(b)
}

// formatJSON indents JSON keeping the order of object keys, and writes on
// one line every value that fits in scenarioLineWrap columns.
func formatJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := readJSON(dec)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	writeValue(&out, v, 0, 0)
	out.WriteByte('\n')
	return out.Bytes(), nil
}

type jsonObject struct {
	keys []string
	vals []any
}

func readJSON(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := tok.(type) {
	case json.Delim:
		switch d {
		case '{':
			o := &jsonObject{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				o.keys, o.vals = append(o.keys, k.(string)), append(o.vals, v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", d)
	default:
		return tok, nil
	}
}

func jsonScalar(v any) string {
	switch s := v.(type) {
	case string:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(b.String(), "\n")
	case json.Number:
		return s.String()
	case bool:
		if s {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	}
	panic(fmt.Sprintf("unexpected JSON value %T", v))
}

// oneLine renders v on a single line.
func oneLine(v any) string {
	switch x := v.(type) {
	case *jsonObject:
		parts := make([]string, len(x.keys))
		for i, k := range x.keys {
			parts[i] = jsonScalar(k) + ": " + oneLine(x.vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = oneLine(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return jsonScalar(v)
}

// writeValue writes v on a line indented by depth levels that already
// holds used more characters.
func writeValue(out *bytes.Buffer, v any, depth, used int) {
	line := oneLine(v)
	if 2*depth+used+len(line) <= scenarioLineWrap {
		out.WriteString(line)
		return
	}
	pad := strings.Repeat("  ", depth+1)
	switch x := v.(type) {
	case *jsonObject:
		out.WriteString("{\n")
		for i, k := range x.keys {
			key := jsonScalar(k) + ": "
			out.WriteString(pad + key)
			writeValue(out, x.vals[i], depth+1, len(key)+1)
			if i < len(x.keys)-1 {
				out.WriteByte(',')
			}
			out.WriteByte('\n')
		}
		out.WriteString(strings.Repeat("  ", depth) + "}")
	case []any:
		out.WriteString("[\n")
		for i, e := range x {
			out.WriteString(pad)
			writeValue(out, e, depth+1, 1)
			if i < len(x)-1 {
				out.WriteByte(',')
			}
			out.WriteByte('\n')
		}
		out.WriteString(strings.Repeat("  ", depth) + "]")
	default:
		out.WriteString(line)
	}
}

// TestScenarioFormat pins the corpus format: a fixture typo fails the
// load, and the formatter is stable.
func TestScenarioFormat(t *testing.T) {
	bad := []struct{ name, kind, input string }{
		{"unknown shard field", kindDecide, `{"sync_mod": "on", "nodes": [{"name": "pg1", "role": "primary"}]}`},
		{"unknown node field", kindDecide, `{"nodes": [{"name": "pg1", "role": "primary", "helth": "down"}]}`},
		{"unknown receiver field", kindDecide, `{"nodes": [{"name": "pg2", "role": "standby", "health": "healthy", "lsn": "0/1", "receiver": {"state": "x"}}]}`},
		{"unknown rejoin field", kindRejoin, `{"runing": true}`},
		{"bad role", kindDecide, `{"nodes": [{"name": "pg1", "role": "leader"}]}`},
		{"bad health", kindDecide, `{"nodes": [{"name": "pg1", "role": "primary", "health": "ok"}]}`},
		{"sample without lsn", kindDecide, `{"nodes": [{"name": "pg1", "role": "primary", "health": "healthy", "timeline": 2}]}`},
		{"streams from no node", kindDecide, `{"nodes": [{"name": "pg2", "role": "standby", "health": "healthy", "lsn": "0/1", "streams_from": "pg9"}]}`},
		{"bad sync mode", kindDecide, `{"sync_mode": "yes", "nodes": [{"name": "pg1", "role": "primary"}]}`},
		{"bad lsn", kindDecide, `{"nodes": [{"name": "pg1", "role": "primary", "health": "healthy", "lsn": "3000000"}]}`},
		{"unknown kind", "decid", `{}`},
	}
	for _, c := range bad {
		sc := scenario{Name: "x", Kind: c.kind, Input: json.RawMessage(c.input)}
		if _, _, _, err := sc.run(); err == nil {
			t.Errorf("%s: loaded without an error", c.name)
		}
	}
	var cases []scenario
	if err := strictDecode([]byte(`[{"name": "a", "description": "d", "kind": "decide", "input": {}, "typo": 1}]`), &cases); err == nil {
		t.Error("an unknown case field loaded without an error")
	}

	in := []byte(`[{"b":1,"a":{"long":"` + strings.Repeat("x", 130) + `","n":[1,2]},"e":[]}]`)
	once, err := formatJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := formatJSON(once)
	if err != nil {
		t.Fatal(err)
	}
	want := "[\n  {\n    \"b\": 1,\n    \"a\": {\n      \"long\": \"" + strings.Repeat("x", 130) + "\",\n      \"n\": [1, 2]\n    },\n    \"e\": []\n  }\n]\n"
	if d := cmp.Diff(want, string(once)); d != "" {
		t.Errorf("format (-want +got):\n%s", d)
	}
	if !bytes.Equal(once, twice) {
		t.Errorf("format is not stable:\n%s\n%s", once, twice)
	}
}
