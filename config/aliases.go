package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MaxAliasNodes is how many YAML nodes (mapping keys, values, list entries)
// the aliases of one document may add to it once expanded, beyond the nodes
// written. Anchors and aliases let a few hundred bytes stand for billions of
// values (the "billion laughs"); every reader that follows aliases (the
// policies' parameter decoding, the admin /config view) would build them
// all. Reusing a block of policies or headers across routes adds a few
// hundred or thousand nodes, far below the limit.
const MaxAliasNodes = 100_000

// AliasError is an alias that would make a YAML tree too big once expanded,
// or that refers to an anchor it is inside. Alias is where it is written;
// Msg says what is wrong and how to fix it, without the position.
type AliasError struct {
	Alias *yaml.Node
	Msg   string
}

func (e *AliasError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Alias.Line, e.Alias.Column, e.Msg)
}

// CheckAliases measures n as a reader that follows aliases sees it, without
// expanding anything: it returns an *AliasError when the aliases under n
// add more than MaxAliasNodes nodes to those written under n, or when an
// alias refers to an anchor that contains it (which would never end). It
// takes time linear in the nodes written and is safe for concurrent use
// as long as nothing changes n meanwhile.
func CheckAliases(n *yaml.Node) error {
	if n == nil {
		return nil
	}
	w := &aliasWalk{
		limit: written(n) + MaxAliasNodes,
		sizes: map[*yaml.Node]int{},
		open:  map[*yaml.Node]bool{},
	}
	if err := w.walk(n); err != nil {
		return err
	}
	return nil
}

// written counts the nodes of n's tree, aliases counted as one.
func written(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += written(k)
	}
	return c
}

// aliasWalk counts nodes in document order, an alias as the size of what it
// names, and remembers the size of every anchored node it has walked, so
// that each node is visited once however often it is aliased.
type aliasWalk struct {
	limit int
	count int
	// sizes are the expanded sizes of anchored nodes walked so far.
	sizes map[*yaml.Node]int
	// open are the anchored nodes being walked: an alias to one of them
	// is inside what it names.
	open map[*yaml.Node]bool
}

func (w *aliasWalk) walk(n *yaml.Node) *AliasError {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		size, err := w.size(n)
		if err != nil {
			return err
		}
		w.count += size
		if w.count > w.limit {
			return w.tooBig(n, size)
		}
		return nil
	}
	w.count++
	start := w.count
	if n.Anchor != "" {
		w.open[n] = true
	}
	for _, c := range n.Content {
		if err := w.walk(c); err != nil {
			return err
		}
	}
	if n.Anchor != "" {
		delete(w.open, n)
		w.sizes[n] = w.count - start + 1
	}
	return nil
}

// size returns how many nodes alias stands for.
func (w *aliasWalk) size(alias *yaml.Node) (int, *AliasError) {
	target := alias.Alias
	if w.open[target] {
		return 0, &AliasError{Alias: alias, Msg: fmt.Sprintf(
			"alias *%s refers to the anchor &%s at line %d, which contains it, so the value would never end; "+
				"point the alias at an anchor outside it, or write the value out", alias.Value, target.Anchor, target.Line)}
	}
	if s, ok := w.sizes[target]; ok {
		return s, nil
	}
	// The anchor is outside what this walk has seen (an earlier document
	// of the stream, or outside the subtree being checked): measure it on
	// its own, sharing what is known.
	sub := &aliasWalk{limit: w.limit, sizes: w.sizes, open: w.open}
	if err := sub.walk(target); err != nil {
		return 0, err
	}
	return w.sizes[target], nil
}

func (w *aliasWalk) tooBig(alias *yaml.Node, size int) *AliasError {
	return &AliasError{Alias: alias, Msg: fmt.Sprintf(
		"alias *%s stands for %d values (the anchor &%s at line %d and everything in it, its own aliases expanded), "+
			"which takes the document past the %d values that aliases may add to it; an alias is for reusing a block, "+
			"not for multiplying one: write the values out, or alias fewer nested anchors",
		alias.Value, size, alias.Value, alias.Alias.Line, MaxAliasNodes)}
}
