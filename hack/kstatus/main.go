// Command kstatus prints what the kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status) concludes
// about Kubernetes objects, so tests can check our conditions against the real library instead of our
// reading of its rules.
//
// Usage: kstatus [FILE ...]    (no FILE, or "-": standard input)
//
// Input: JSON or YAML, one object, several (a YAML stream or concatenated JSON), or lists (any kind
// ending in "List" with items, as kubectl and the API return them). Output: one JSON object per input
// object, in input order: {"apiVersion", "kind", "namespace", "name", "status", "message"}, or "error"
// instead of status and message when kstatus could not compute one. Exit status: 0 when every object
// was evaluated, 1 when kstatus failed on one, 2 when the input could not be read.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Status     string `json:"status,omitempty"`
	Message    string `json:"message,omitempty"`
	Error      string `json:"error,omitempty"`
}

// objects decodes every document of r, expanding lists into their items.
func objects(r io.Reader, source string) ([]map[string]interface{}, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(r), 4096)
	var found []map[string]interface{}
	for index := 0; ; index++ {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, index, err)
		}
		if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || string(trimmed) == "null" {
			continue // an empty YAML document ("---" with nothing after it)
		}
		// apimachinery's JSON keeps whole numbers as int64, as unstructured objects need
		// (metadata.generation as float64 makes kstatus fail).
		var doc map[string]interface{}
		if err := utiljson.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s: document %d: not an object: %w", source, index, err)
		}
		expanded, err := expand(doc, source, index)
		if err != nil {
			return nil, err
		}
		found = append(found, expanded...)
	}
}

func expand(doc map[string]interface{}, source string, index int) ([]map[string]interface{}, error) {
	kind, _ := doc["kind"].(string)
	items, isList := doc["items"]
	if !strings.HasSuffix(kind, "List") || !isList {
		return []map[string]interface{}{doc}, nil
	}
	list, ok := items.([]interface{})
	if !ok && items != nil {
		return nil, fmt.Errorf("%s: document %d: %s.items is not a list", source, index, kind)
	}
	var result []map[string]interface{}
	for i, item := range list {
		obj, ok := item.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("%s: document %d: %s.items[%d] is not an object", source, index, kind, i)
		}
		nested, err := expand(obj, source, index)
		if err != nil {
			return nil, err
		}
		result = append(result, nested...)
	}
	return result, nil
}

func evaluate(obj map[string]interface{}) verdict {
	u := &unstructured.Unstructured{Object: obj}
	out := verdict{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	result, err := status.Compute(u)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status = result.Status.String()
	out.Message = result.Message
	return out
}

func read(paths []string) ([]map[string]interface{}, error) {
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	var all []map[string]interface{}
	for _, path := range paths {
		var found []map[string]interface{}
		var err error
		if path == "-" {
			found, err = objects(os.Stdin, "stdin")
		} else {
			var file *os.File
			file, err = os.Open(path)
			if err == nil {
				found, err = objects(file, path)
				_ = file.Close()
			}
		}
		if err != nil {
			return nil, err
		}
		all = append(all, found...)
	}
	return all, nil
}

func main() {
	for _, arg := range os.Args[1:] {
		if arg == "-h" || arg == "--help" {
			fmt.Fprintln(os.Stderr, "usage: kstatus [FILE ...]  (JSON or YAML objects or lists; no FILE or -: stdin)")
			fmt.Fprintln(os.Stderr, "prints one JSON line per object: apiVersion, kind, namespace, name, status, message")
			os.Exit(0)
		}
	}
	objs, err := read(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(2)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	code := 0
	for _, obj := range objs {
		out := evaluate(obj)
		if out.Error != "" {
			code = 1
		}
		if err := encoder.Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: writing the result: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(code)
}
