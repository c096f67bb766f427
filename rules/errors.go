package rules

import (
	"fmt"
	"sort"
	"strings"
)

// ValidationError is one problem found in a configuration file.
type ValidationError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// Path locates the value in the document, e.g. "rules[3].when"
	// (list indexes start at 0).
	Path string `json:"path"`
	Msg  string `json:"msg"`
}

func (e ValidationError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// ValidationErrors is every problem found in one configuration, in file
// order. Load reports all of them at once so an operator fixes a file in
// one pass.
type ValidationErrors []ValidationError

func (es ValidationErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es ValidationErrors) sorted() ValidationErrors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}

// pos is a line and column in the configuration file (1-based).
type pos struct{ line, col int }

// reporter collects errors against paths whose positions the decoder
// recorded.
type reporter struct {
	file string
	pos  map[string]pos
	errs ValidationErrors
}

// at finds the position of path, or of its nearest recorded ancestor when
// the value is absent (a missing key is reported at its parent mapping).
func (r *reporter) at(path string) pos {
	for p := path; ; p = parentPath(p) {
		if ps, ok := r.pos[p]; ok {
			return ps
		}
		if p == "" {
			return pos{1, 1}
		}
	}
}

func (r *reporter) errorf(path, format string, args ...any) {
	r.errorAt(r.at(path), path, fmt.Sprintf(format, args...))
}

func (r *reporter) errorAt(p pos, path, msg string) {
	r.errs = append(r.errs, ValidationError{File: r.file, Line: p.line, Col: p.col, Path: path, Msg: msg})
}

// parentPath drops the last ".key" or "[i]" of a path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
