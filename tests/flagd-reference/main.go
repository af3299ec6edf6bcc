// Command flagd-reference evaluates flagd flags with flagd's own Go evaluator
// (github.com/open-feature/flagd/core), for Switchyard's differential tests.
//
// Input, one JSON object per line on stdin:
//
//	{"document": "<flagd flag definition text>",
//	 "cases": [{"flag": "key", "type": "boolean|string|integer|float|object", "context": {...}}]}
//
// Output, one JSON object per input line on stdout: {"load_error": "..."} when flagd refuses the
// document, otherwise {"results": [...]}, one result per case with the details an OpenFeature
// provider reports: value (null when the caller's default applies), variant, reason, error_code.
//
// With FLAGD_REFERENCE_REPEAT=N (bench/flagd/run.sh), each line's cases are evaluated N times
// after one warm-up pass and the output is {"evaluations": E, "ns_per_evaluation": T} instead.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/open-feature/flagd/core/pkg/evaluator"
	"github.com/open-feature/flagd/core/pkg/logger"
	"github.com/open-feature/flagd/core/pkg/model"
	"github.com/open-feature/flagd/core/pkg/store"
	"github.com/open-feature/flagd/core/pkg/sync"
)

type request struct {
	Document string `json:"document"`
	Cases    []struct {
		Flag    string         `json:"flag"`
		Type    string         `json:"type"`
		Context map[string]any `json:"context"`
	} `json:"cases"`
}

type result struct {
	Value     any    `json:"value"`
	Variant   string `json:"variant,omitempty"`
	Reason    string `json:"reason"`
	ErrorCode string `json:"error_code,omitempty"`
}

type response struct {
	LoadError string   `json:"load_error,omitempty"`
	Results   []result `json:"results,omitempty"`
}

func details(value any, variant, reason string, err error) result {
	switch {
	case err != nil:
		return result{Reason: model.ErrorReason, ErrorCode: err.Error()}
	case reason == model.FallbackReason:
		// No default variant: the provider serves the caller's default.
		return result{Reason: model.DefaultReason}
	case reason == model.DisabledReason:
		return result{Reason: model.DisabledReason}
	default:
		return result{Value: value, Variant: variant, Reason: reason}
	}
}

func load(r request) (*evaluator.JSON, error) {
	log := logger.NewLogger(nil, false)
	ev := evaluator.NewJSON(log, store.NewFlags())
	err := ev.SetState(sync.DataSync{FlagData: r.Document, Source: "reference"})
	return ev, err
}

func evaluate(r request) response {
	ev, err := load(r)
	if err != nil {
		return response{LoadError: err.Error()}
	}
	return response{Results: resolveAll(ev, r)}
}

// timed evaluates every case `repeat` times after one warm-up pass.
func timed(r request, repeat int) (map[string]any, error) {
	ev, err := load(r)
	if err != nil {
		return nil, err
	}
	resolveAll(ev, r)
	start := time.Now()
	for i := 0; i < repeat; i++ {
		resolveAll(ev, r)
	}
	elapsed := time.Since(start)
	n := repeat * len(r.Cases)
	return map[string]any{"evaluations": n, "ns_per_evaluation": float64(elapsed.Nanoseconds()) / float64(n)}, nil
}

func resolveAll(ev *evaluator.JSON, r request) []result {
	ctx := context.Background()
	results := make([]result, 0, len(r.Cases))
	for _, c := range r.Cases {
		var out result
		switch c.Type {
		case "boolean":
			v, variant, reason, _, err := ev.ResolveBooleanValue(ctx, "", c.Flag, c.Context)
			out = details(v, variant, reason, err)
		case "string":
			v, variant, reason, _, err := ev.ResolveStringValue(ctx, "", c.Flag, c.Context)
			out = details(v, variant, reason, err)
		case "integer":
			v, variant, reason, _, err := ev.ResolveIntValue(ctx, "", c.Flag, c.Context)
			out = details(v, variant, reason, err)
		case "float":
			v, variant, reason, _, err := ev.ResolveFloatValue(ctx, "", c.Flag, c.Context)
			out = details(v, variant, reason, err)
		case "object":
			v, variant, reason, _, err := ev.ResolveObjectValue(ctx, "", c.Flag, c.Context)
			out = details(v, variant, reason, err)
		default:
			out = result{Reason: model.ErrorReason, ErrorCode: "unknown type " + c.Type}
		}
		results = append(results, out)
	}
	return results
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	encoder := json.NewEncoder(out)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "flagd-reference: bad request line:", err)
			os.Exit(2)
		}
		if repeat, err := strconv.Atoi(os.Getenv("FLAGD_REFERENCE_REPEAT")); err == nil && repeat > 0 {
			out, err := timed(r, repeat)
			if err != nil {
				fmt.Fprintln(os.Stderr, "flagd-reference:", err)
				os.Exit(1)
			}
			if err := encoder.Encode(out); err != nil {
				fmt.Fprintln(os.Stderr, "flagd-reference:", err)
				os.Exit(1)
			}
			continue
		}
		if err := encoder.Encode(evaluate(r)); err != nil {
			fmt.Fprintln(os.Stderr, "flagd-reference:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "flagd-reference:", err)
		os.Exit(1)
	}
}
