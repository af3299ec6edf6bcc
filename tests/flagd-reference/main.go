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
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

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

func evaluate(r request) response {
	log := logger.NewLogger(nil, false)
	ev := evaluator.NewJSON(log, store.NewFlags())
	if err := ev.SetState(sync.DataSync{FlagData: r.Document, Source: "reference"}); err != nil {
		return response{LoadError: err.Error()}
	}
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
	return response{Results: results}
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
