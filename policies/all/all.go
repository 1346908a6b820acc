// Package all registers every policy that ships with flexgate. Import it
// for its side effects; each policy's blank import sits in a file of its
// own beside this one.
package all
