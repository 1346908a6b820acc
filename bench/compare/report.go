package main

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Case is one load shape: which body, how many connections.
type Case struct {
	Body  string
	Conns int
}

func (c Case) String() string { return fmt.Sprintf("%s body, %d conns", c.Body, c.Conns) }

// Report collects a run's samples and writes them out.
type Report struct {
	Started, Finished time.Time
	Options           options
	Machine           string
	Versions          []string
	NoFile            uint64
	RunDuration       time.Duration
	Targets           []*Target
	Notes             []string
	// Samples per case per target, one per round.
	Samples map[Case]map[string][]Sample
	cases   []Case
	// PeakRSS is VmHWM over each target's process tree, KiB, after the
	// rounds (before the connection-scale run).
	PeakRSS map[string]int64
	Idle    []IdleResult
	// Plan is how the budget was split.
	Plan plan
	// OpenLoopBase is nginx's maximum the open-loop rates are percentages
	// of; OpenLoop the runs.
	OpenLoopBase float64
	OpenLoop     []OpenLoopResult
	// Handshakes are the TLS handshake runs.
	Handshakes []HandshakeResult
}

// row is one target's row in case c, if it was measured there.
func (r *Report) row(c Case, target string) (Row, bool) {
	if len(r.Samples[c][target]) == 0 {
		return Row{}, false
	}
	for _, row := range r.Rows(c) {
		if row.Target == target {
			return row, true
		}
	}
	return Row{}, false
}

func (r *Report) add(c Case, target string, s Sample) {
	if r.Samples == nil {
		r.Samples = map[Case]map[string][]Sample{}
	}
	if r.Samples[c] == nil {
		r.Samples[c] = map[string][]Sample{}
		r.cases = append(r.cases, c)
	}
	r.Samples[c][target] = append(r.Samples[c][target], s)
}

// Row is the median of one target's rounds in one case. Each figure is
// the median of that figure, not the figures of the median round.
type Row struct {
	Target                 string
	What                   string
	Rounds                 int
	RPS                    float64
	P50, P99, P999         time.Duration
	OKRatio                float64
	CPUPer100k             float64
	VsDirect, VsNginx      float64
	PeakRSSKiB             int64
	Errors                 int64
	isFlexgate, isBaseline bool
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func medianOf(ss []Sample, f func(Sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

// nginxPeer names the nginx target a flexgate-like target is compared
// with: the one doing the same kind of work.
func nginxPeer(t *Target) string {
	switch {
	case t.TLS:
		return "nginx-tls"
	case t.Chain:
		return "nginx-chain"
	case t.LB:
		return "nginx-lb3"
	}
	return "nginx"
}

// Rows computes the table of one case, in target order.
func (r *Report) Rows(c Case) []Row {
	byName := r.Samples[c]
	var rows []Row
	rps := map[string]float64{}
	for _, t := range r.Targets {
		ss := byName[t.Name]
		if len(ss) == 0 {
			continue
		}
		row := Row{
			Target: t.Name, What: t.What, Rounds: len(ss),
			RPS:        medianOf(ss, func(s Sample) float64 { return s.RPS() }),
			P50:        time.Duration(medianOf(ss, func(s Sample) float64 { return float64(s.P50US) })) * time.Microsecond,
			P99:        time.Duration(medianOf(ss, func(s Sample) float64 { return float64(s.P99US) })) * time.Microsecond,
			P999:       time.Duration(medianOf(ss, func(s Sample) float64 { return float64(s.P999US) })) * time.Microsecond,
			OKRatio:    medianOf(ss, func(s Sample) float64 { return s.OKRatio() }),
			PeakRSSKiB: r.PeakRSS[t.Name],
			isFlexgate: t.Flexgate,
			isBaseline: t.Name == "direct",
		}
		row.CPUPer100k = medianOf(ss, func(s Sample) float64 {
			if s.Requests == 0 {
				return 0
			}
			return s.CPUSeconds / float64(s.Requests) * 1e5
		})
		for _, s := range ss {
			row.Errors += s.ConnectErrors + s.ReadErrors + s.WriteErrors + s.Timeouts
		}
		rps[t.Name] = row.RPS
		rows = append(rows, row)
	}
	for i := range rows {
		t := r.target(rows[i].Target)
		if d := rps["direct"]; d > 0 {
			rows[i].VsDirect = rows[i].RPS / d
		}
		if n := rps[nginxPeer(t)]; n > 0 {
			rows[i].VsNginx = rows[i].RPS / n
		}
	}
	return rows
}

func (r *Report) target(name string) *Target {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return &Target{Name: name}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

// Markdown renders the report.
func (r *Report) Markdown(svgName string) string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "# flexgate vs nginx, HAProxy, Caddy and Traefik — latest run\n\n")
	fmt.Fprintf(&b, "Written by `go run ./bench/compare` (`make bench-compare`) on %s, in %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	for _, v := range r.Versions {
		fmt.Fprintf(&b, "- %s\n", v)
	}
	fmt.Fprintf(&b, "- Load: `wrk -t1 -c<conns> -d%s --latency`, GET `/api/products/<body>%s` with the chain's headers, "+
		"%d rounds per case visiting the targets in turn; figures are medians of the rounds. Budget %s.\n",
		r.RunDuration, benchQuery, o.rounds, o.total)
	fmt.Fprintf(&b, "- The chain targets' rate limit is raised (flexgate %d per minute, nginx %d per second) so that neither rejects; "+
		"introspection is answered by a local endpoint and cached after the first call; flexgate-chain and flexgate-chain-flex also verify the bearer token, an RS256 JWT, "+
		"with the JWK set the upstream serves (jwt-validation, cached until its exp); stock nginx cannot.\n", benchRatePerMinute, benchRatePerSecond)
	fmt.Fprintf(&b, "- CPU is user+system seconds of the proxy's processes per 100k requests (lower is better); "+
		"peak RSS is VmHWM summed over the proxy's processes (nginx: master and workers).\n\n")
	if len(r.Notes) > 0 {
		b.WriteString("**Notes from this run:**\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	if svgName != "" {
		fmt.Fprintf(&b, "![requests per second](%s)\n\n", svgName)
	}
	for _, c := range r.cases {
		fmt.Fprintf(&b, "## %s\n\n", c)
		b.WriteString("| target | req/s | p50 ms | p99 ms | p99.9 ms | × direct | × nginx (same kind) | CPU s / 100k req | peak RSS MiB | 2xx | socket errors |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, row := range r.Rows(c) {
			name := row.Target
			if row.isFlexgate {
				name = "**" + name + "**"
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %.2f | %.1f | %.1f%% | %d |\n",
				name, row.RPS, ms(row.P50), ms(row.P99), ms(row.P999), ratio(row.VsDirect), ratio(row.VsNginx),
				row.CPUPer100k, float64(row.PeakRSSKiB)/1024, row.OKRatio*100, row.Errors)
		}
		b.WriteString("\n")
	}
	r.openLoopMarkdown(&b)
	r.handshakeMarkdown(&b)
	if len(r.Idle) > 0 {
		fmt.Fprintf(&b, "## Connection scale: %d idle keep-alive connections\n\n", o.idle)
		fmt.Fprintf(&b, "Each idle connection made one request and then stayed open (from several 127.0.0.x source addresses, "+
			"%d per address). The server's RSS is read before they are opened, as soon as the last one is, and after they have "+
			"been idle for %s more; then wrk -c64 runs alongside them for %s. KiB per conn is (RSS with idle − RSS before) / held, "+
			"at once and after the wait.\n\n", idleSourcePer, idleSettle, r.Plan.idle)
		b.WriteString("| target | held | opened in s | RSS before MiB | RSS with idle MiB | KiB per conn | after " + idleSettle.String() +
			": RSS MiB | KiB per conn | req/s alongside | p50 ms | p99 ms | p99.9 ms | idle still served |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, ir := range r.Idle {
			held := fmt.Sprintf("%d", ir.Open)
			if ir.Open < ir.Asked {
				held = fmt.Sprintf("%d of %d", ir.Open, ir.Asked)
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %s | %s | %s | %d/%d |\n",
				ir.Target, held, ir.OpenSeconds, float64(ir.RSSBeforeKiB)/1024, float64(ir.RSSIdleKiB)/1024, ir.KiBPerConn(ir.RSSIdleKiB),
				float64(ir.RSSSettledKiB)/1024, ir.KiBPerConn(ir.RSSSettledKiB),
				ir.Load.RPS(), ms(time.Duration(ir.Load.P50US)*time.Microsecond),
				ms(time.Duration(ir.Load.P99US)*time.Microsecond), ms(time.Duration(ir.Load.P999US)*time.Microsecond),
				ir.AliveAfter, ir.Sampled)
		}
		b.WriteString("\n")
	}
	b.WriteString("Targets:\n\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "- `%s`: %s\n", t.Name, t.What)
	}
	return b.String()
}

// KiBPerConn is the server's resident memory per held idle connection, from
// a reading of its RSS with them open (RSSIdleKiB or RSSSettledKiB).
func (ir IdleResult) KiBPerConn(rssKiB int64) float64 {
	if ir.Open <= 0 {
		return 0
	}
	return float64(rssKiB-ir.RSSBeforeKiB) / float64(ir.Open)
}

// openLoopMarkdown renders the open-loop table: one row per target and rate.
func (r *Report) openLoopMarkdown(b *strings.Builder) {
	if len(r.OpenLoop) == 0 {
		return
	}
	fmt.Fprintf(b, "## Open loop: constant rate at %s of nginx's maximum (%.0f req/s)\n\n", percents(r.Options.openLoop), r.OpenLoopBase)
	fmt.Fprintf(b, "vegeta (as a library, HTTP/1.1 keep-alive, at most %d connections) sends at a constant rate for %s "+
		"(%s body). Latencies are from each request's intended send time, so a request the generator sent late counts its wait "+
		"(coordinated omission corrected); \"sent/s\" below the rate, or a large send lag, means the load generator, "+
		"not the target, fell behind. × nginx p99 compares p99 at the same rate.\n\n", openLoopMaxConns, r.Plan.openLoop, r.Options.bodies[0])
	b.WriteString("| target | % of max | rate/s | sent/s | p50 ms | p99 ms | p99.9 ms | max ms | × nginx p99 | send lag p99 ms | 2xx | failed |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	nginxP99 := map[int]time.Duration{}
	for _, ol := range r.OpenLoop {
		if ol.Target == "nginx" {
			nginxP99[ol.Percent] = ol.P99
		}
	}
	for _, ol := range r.OpenLoop {
		name := ol.Target
		if r.target(name).Flexgate {
			name = "**" + name + "**"
		}
		vs := 0.0
		if n := nginxP99[ol.Percent]; n > 0 {
			vs = float64(ol.P99) / float64(n)
		}
		ok := 0.0
		if ol.Requests > 0 {
			ok = float64(ol.OK) / float64(ol.Requests) * 100
		}
		fmt.Fprintf(b, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s | %.1f%% | %d |\n",
			name, ol.Percent, ol.Rate, ol.Achieved, ms(ol.P50), ms(ol.P99), ms(ol.P999), ms(ol.Max), ratio(vs), ms(ol.SendLagP99), ok, ol.Errors)
	}
	b.WriteString("\n")
}

func percents(ps []int) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%d %%", p))
	}
	return strings.Join(s, " and ")
}

// handshakeMarkdown renders the TLS handshake table.
func (r *Report) handshakeMarkdown(b *strings.Builder) {
	if len(r.Handshakes) == 0 {
		return
	}
	b.WriteString("## TLS handshakes: a new connection per request\n\n")
	fmt.Fprintf(b, "%d clients in a closed loop for %s each: connect, TLS handshake (TLS 1.3, P-256 certificate), one small GET, "+
		"close. \"resumed\" offers the session ticket of an earlier connection; the resumed column counts those the server accepted. "+
		"CPU is the target's, per connection. Every target is measured with the clients offering X25519 alone, the same work for all "+
		"(Debian's nginx knows no post-quantum key exchange); flexgate's are measured again with the clients offering the hybrid "+
		"X25519MLKEM768 first, as Go's clients, current browsers and curl do, which a Go server accepts. "+
		"× nginx compares runs with the same key exchange.\n\n", handshakeClients, r.Plan.handshake)
	b.WriteString("| target | session | key exchange | handshakes/s | × nginx | resumed | p50 ms | p99 ms | CPU ms / handshake | errors |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	type run struct {
		resumed bool
		group   string
	}
	nginx := map[run]float64{}
	for _, h := range r.Handshakes {
		if h.Target == "nginx-tls" {
			nginx[run{h.Resumed, h.Group}] = h.PerSecond()
		}
	}
	for _, h := range r.Handshakes {
		name, kind := h.Target, "full"
		if r.target(name).Flexgate {
			name = "**" + name + "**"
		}
		if h.Resumed {
			kind = "resumed"
		}
		vs := 0.0
		if n := nginx[run{h.Resumed, h.Group}]; n > 0 {
			vs = h.PerSecond() / n
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.0f | %s | %d/%d | %s | %s | %.3f | %d |\n",
			name, kind, h.Group, h.PerSecond(), ratio(vs), h.Resumes, h.Conns, ms(h.P50), ms(h.P99), h.CPUPerHandshake(), h.Errors)
	}
	b.WriteString("\n")
}

// SVG renders requests per second per target as horizontal bars, one group
// per case. Hand-written SVG keeps the harness free of chart libraries.
func (r *Report) SVG() string {
	const (
		width  = 760
		left   = 130
		right  = 90
		barH   = 18
		gap    = 6
		header = 30
	)
	var b strings.Builder
	y := 40
	var body strings.Builder
	for _, c := range r.cases {
		rows := r.Rows(c)
		maxRPS := 0.0
		for _, row := range rows {
			maxRPS = max(maxRPS, row.RPS)
		}
		fmt.Fprintf(&body, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+16, html.EscapeString(c.String()))
		y += header
		for _, row := range rows {
			w := 0.0
			if maxRPS > 0 {
				w = row.RPS / maxRPS * float64(width-left-right)
			}
			color := "#8c96a0"
			switch {
			case row.isFlexgate:
				color = "#1f77b4"
			case !row.isBaseline:
				color = "#ff9f40"
			}
			fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-4, html.EscapeString(row.Target))
			fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, w, barH, color)
			fmt.Fprintf(&body, `<text x="%.1f" y="%d">%.0f/s</text>`+"\n", float64(left)+w+6, y+barH-4, row.RPS)
			y += barH + gap
		}
		y += 10
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, y+10)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">Requests per second, median of rounds (higher is better) — %s</text>`+"\n",
		html.EscapeString(r.Started.UTC().Format("2006-01-02")))
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

// Write puts latest.md, latest.svg and latest.json into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create results dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.svg"), []byte(r.SVG()), 0o644); err != nil {
		return err
	}
	md := r.Markdown("latest.svg")
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644); err != nil {
		return err
	}
	raw := map[string]any{"started": r.Started, "machine": r.Machine, "versions": r.Versions, "notes": r.Notes, "idle": r.Idle, "peak_rss_kib": r.PeakRSS,
		"open_loop_base_rps": r.OpenLoopBase, "open_loop": r.OpenLoop, "handshakes": r.Handshakes}
	var cases []map[string]any
	for _, c := range r.cases {
		cases = append(cases, map[string]any{"body": c.Body, "conns": c.Conns, "samples": r.Samples[c]})
	}
	raw["cases"] = cases
	js, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), js, 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	logf("wrote %s", filepath.Join(dir, "latest.md"))
	return nil
}
