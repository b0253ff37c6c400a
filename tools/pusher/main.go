// pusher pushes one metric to a Prometheus Pushgateway the way real clients do: with
// client_golang's prometheus/push package (its URL building, its encoders, its Content-Type).
//
// Usage:
//
//	pusher --url URL --job JOB [--label NAME=VALUE]... [--kind KIND] [--format protobuf|text]
//	       [--method put|post|delete] [--metric NAME] [--value V]
//	       [--basic-auth USER:PASS] [--header 'Name: value']... [--cacert FILE] [--timeout 10s]
//
// KIND is counter, gauge, summary, histogram (classic buckets), native-histogram (sparse buckets
// only; needs --format protobuf, the text format cannot carry it) or untyped. Defaults: gauge,
// protobuf (client_golang's default), put. --metric defaults to pusher_<kind> (dashes become
// underscores); --value defaults to 1 (for summary and histograms: the one observed value, plus
// 0.2 and 3 more). --label adds grouping labels; their names go into the URL exactly as
// client_golang writes them (raw, not U__-escaped), values that are empty or contain "/" as
// @base64. put replaces the group (Push), post adds to it (Add), delete deletes it (Delete).
//
// Success: prints nothing, exit 0. Failure: the gateway's answer (or the error) on stderr, exit 1;
// bad usage: exit 2.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func usage(format string, args ...any) {
	if format != "" {
		fmt.Fprintf(os.Stderr, "pusher: "+format+"\n", args...)
	}
	fmt.Fprintln(os.Stderr, "usage: pusher --url URL --job JOB [--label k=v]... [--kind counter|gauge|summary|histogram|native-histogram|untyped] [--format protobuf|text] [--method put|post|delete] [--metric NAME] [--value V] [--basic-auth USER:PASS] [--header 'N: v']... [--cacert FILE] [--timeout D]")
	os.Exit(2)
}

func main() {
	var labels, headers multi
	gwURL := flag.String("url", "", "Pushgateway base URL, e.g. http://127.0.0.1:9091 (with any route prefix)")
	job := flag.String("job", "", "job label of the group")
	flag.Var(&labels, "label", "grouping label NAME=VALUE (repeatable)")
	kind := flag.String("kind", "gauge", "counter|gauge|summary|histogram|native-histogram|untyped")
	format := flag.String("format", "protobuf", "protobuf (delimited, client_golang's default) or text")
	method := flag.String("method", "put", "put (replace the group), post (add to it) or delete")
	metric := flag.String("metric", "", "metric name (default pusher_<kind>)")
	valueS := flag.String("value", "1", "value to set or observe")
	basicAuth := flag.String("basic-auth", "", "USER:PASS")
	flag.Var(&headers, "header", "extra request header 'Name: value' (repeatable)")
	cacert := flag.String("cacert", "", "PEM CA bundle to trust for an https URL")
	timeout := flag.Duration("timeout", 10*time.Second, "request timeout")
	flag.Usage = func() { usage("") }
	flag.Parse()
	if flag.NArg() != 0 {
		usage("unexpected arguments %q", flag.Args())
	}
	if *gwURL == "" || *job == "" {
		usage("--url and --job are required")
	}
	value, err := strconv.ParseFloat(*valueS, 64)
	if err != nil {
		usage("--value: %v", err)
	}
	name := *metric
	if name == "" {
		name = "pusher_" + strings.ReplaceAll(*kind, "-", "_")
	}
	help := "Pushed by the pgw-janitor test pusher."

	var c prometheus.Collector
	switch *kind {
	case "counter":
		m := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.Add(value)
		c = m
	case "gauge":
		m := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		m.Set(value)
		c = m
	case "summary":
		m := prometheus.NewSummary(prometheus.SummaryOpts{Name: name, Help: help,
			Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}})
		for _, v := range []float64{value, 0.2, 3} {
			m.Observe(v)
		}
		c = m
	case "histogram":
		m := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			Buckets: []float64{0.1, 0.5, 1, 5}})
		for _, v := range []float64{value, 0.2, 3} {
			m.Observe(v)
		}
		c = m
	case "native-histogram":
		if *format != "protobuf" {
			usage("--kind native-histogram needs --format protobuf")
		}
		m := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help,
			NativeHistogramBucketFactor: 1.1, NativeHistogramZeroThreshold: 1e-9})
		for _, v := range []float64{value, 0.2, 3} {
			m.Observe(v)
		}
		c = m
	case "untyped":
		c = constCollector{prometheus.MustNewConstMetric(
			prometheus.NewDesc(name, help, nil, nil), prometheus.UntypedValue, value)}
	default:
		usage("unknown --kind %q", *kind)
	}

	p := push.New(strings.TrimRight(*gwURL, "/"), *job).Collector(c)
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			usage("--label %q: want NAME=VALUE", l)
		}
		p = p.Grouping(k, v)
	}
	switch *format {
	case "protobuf":
		p = p.Format(expfmt.NewFormat(expfmt.TypeProtoDelim))
	case "text":
		p = p.Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	default:
		usage("unknown --format %q", *format)
	}
	if *basicAuth != "" {
		u, pw, _ := strings.Cut(*basicAuth, ":")
		p = p.BasicAuth(u, pw)
	}
	if len(headers) > 0 {
		h := http.Header{}
		for _, hv := range headers {
			k, v, ok := strings.Cut(hv, ":")
			if !ok {
				usage("--header %q: want 'Name: value'", hv)
			}
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		p = p.Header(h)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if *cacert != "" {
		pemData, err := os.ReadFile(*cacert)
		if err != nil {
			usage("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			usage("--cacert %s: no certificate found", *cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	p = p.Client(&http.Client{Timeout: *timeout, Transport: tr})

	switch *method {
	case "put":
		err = p.Push()
	case "post":
		err = p.Add()
	case "delete":
		err = p.Delete()
	default:
		usage("unknown --method %q", *method)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pusher: %v\n", err)
		os.Exit(1)
	}
}

// constCollector collects one fixed metric (client_golang has no plain "untyped" metric type).
type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }
