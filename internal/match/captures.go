package match

import (
	"regexp/syntax"
	"sync"
	"unicode/utf8"
)

// captures finds the capture groups of an expression that matches a whole
// value, with the leftmost-first semantics of the regexp package, without
// allocating: regexp's submatch functions return a new slice on every call.
// Like regexp, it backtracks, remembering the (instruction, position) pairs
// it has tried so that its time stays linear, while that record is small
// (maxBacktrack); on longer input it simulates every thread of the program
// at once (a Pike VM, as regexp's NFA does), in memory that depends on
// the program's size only. Machines are pooled, as regexp's are.
type captures struct {
	prog *syntax.Prog
	pool sync.Pool // *machine
}

func newCaptures(expr string) (*captures, error) {
	text, err := anchored(expr, false)
	if err != nil {
		return nil, err
	}
	tree, err := syntax.Parse(text, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return nil, err
	}
	c := &captures{prog: prog}
	c.pool.New = func() any { return c.newMachine() }
	return c, nil
}

// appendGroups appends to dst the text of every group of the match of the
// whole of in, in order, and returns the extended slice; in must match
// (the caller has checked). A group that took no part adds nothing.
func (c *captures) appendGroups(dst, in []byte) []byte {
	m := c.pool.Get().(*machine)
	if m.match(in) {
		for g := 2; g+1 < len(m.matchcap); g += 2 {
			if a, b := m.matchcap[g], m.matchcap[g+1]; a >= 0 && b >= a {
				dst = append(dst, in[a:b]...)
			}
		}
	}
	c.pool.Put(m)
	return dst
}

// groups returns the positions of the groups of the match of the whole of
// in, as regexp's FindSubmatchIndex does, or nil; for tests.
func (c *captures) groups(in []byte, pike bool) []int {
	m := c.pool.Get().(*machine)
	defer c.pool.Put(m)
	ok := false
	if pike {
		ok = m.run(in)
	} else {
		ok = m.backtrack(in)
	}
	if !ok {
		return nil
	}
	out := append([]int(nil), m.matchcap...)
	out[0], out[1] = 0, len(in)
	return out
}

type thread struct {
	inst *syntax.Inst
	cap  []int
}

type entry struct {
	pc uint32
	t  *thread
}

// queue is a sparse set of program counters, in the order the threads
// were added, which is their priority.
type queue struct {
	sparse []uint32
	dense  []entry
}

type machine struct {
	prog     *syntax.Prog
	q0, q1   queue
	free     []*thread
	matched  bool
	matchcap []int
	start    []int

	// The backtracker's record of what it has tried, and its work.
	visited []uint32
	jobs    []job
}

// job is a backtracker's branch to try later: the instruction and position,
// or with arg set, the second way out of an Alt, or a group's position to
// restore.
type job struct {
	pc  uint32
	arg bool
	pos int
}

// maxBacktrack bounds the backtracker's record, in bits: one per
// instruction and input position, as regexp's does.
const maxBacktrack = 256 * 1024

// match runs the backtracker when its record fits, else the Pike VM.
func (m *machine) match(in []byte) bool {
	if len(m.prog.Inst)*(len(in)+1) <= maxBacktrack {
		return m.backtrack(in)
	}
	return m.run(in)
}

func (c *captures) newMachine() *machine {
	n, ncap := len(c.prog.Inst), c.prog.NumCap
	m := &machine{prog: c.prog, matchcap: make([]int, ncap), start: make([]int, ncap), jobs: make([]job, 0, 64)}
	m.q0 = queue{sparse: make([]uint32, n), dense: make([]entry, 0, n)}
	m.q1 = queue{sparse: make([]uint32, n), dense: make([]entry, 0, n)}
	// At most n threads wait in each queue, and one is in hand: the
	// machine never needs more than it starts with.
	total := 2*n + 1
	caps := make([]int, total*ncap)
	threads := make([]thread, total)
	m.free = make([]*thread, 0, total)
	for i := range threads {
		threads[i].cap = caps[i*ncap : (i+1)*ncap : (i+1)*ncap]
		m.free = append(m.free, &threads[i])
	}
	return m
}

func (m *machine) alloc(i *syntax.Inst) *thread {
	var t *thread
	if n := len(m.free); n > 0 {
		t = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		t = &thread{cap: make([]int, len(m.matchcap))}
	}
	t.inst = i
	return t
}

func (m *machine) clear(q *queue) {
	for _, d := range q.dense {
		if d.t != nil {
			m.free = append(m.free, d.t)
		}
	}
	q.dense = q.dense[:0]
}

// step decodes the rune at pos of in: -1 and width 0 at the end.
func step(in []byte, pos int) (rune, int) {
	if pos >= len(in) {
		return -1, 0
	}
	if c := in[pos]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRune(in[pos:])
}

// run reports whether the program matches the whole of in (it is anchored
// at both ends) and leaves the groups of the highest-priority match in
// matchcap.
func (m *machine) run(in []byte) bool {
	m.matched = false
	for i := range m.matchcap {
		m.matchcap[i] = -1
		m.start[i] = -1
	}
	runq, nextq := &m.q0, &m.q1
	pos := 0
	r, width := step(in, 0)
	m.add(runq, uint32(m.prog.Start), 0, m.start, syntax.EmptyOpContext(-1, r), nil)
	for len(runq.dense) > 0 {
		next, nextWidth := step(in, pos+width)
		m.step(runq, nextq, pos, pos+width, r, syntax.EmptyOpContext(r, next))
		if width == 0 {
			break
		}
		pos += width
		r, width = next, nextWidth
		runq, nextq = nextq, runq
	}
	m.clear(runq)
	m.clear(nextq)
	return m.matched
}

// add follows the empty transitions from pc and queues the threads that
// wait on input (or match) in priority order. cap holds the groups so
// far; t, when not nil, is a thread the caller gives up for reuse. It
// returns a thread not used, if any.
func (m *machine) add(q *queue, pc uint32, pos int, cap []int, cond syntax.EmptyOp, t *thread) *thread {
again:
	if pc == 0 {
		return t
	}
	if j := q.sparse[pc]; j < uint32(len(q.dense)) && q.dense[j].pc == pc {
		return t
	}
	j := len(q.dense)
	q.dense = q.dense[:j+1]
	d := &q.dense[j]
	d.t = nil
	d.pc = pc
	q.sparse[pc] = uint32(j)

	i := &m.prog.Inst[pc]
	switch i.Op {
	case syntax.InstFail:
		// Nothing queued.
	case syntax.InstAlt, syntax.InstAltMatch:
		t = m.add(q, i.Out, pos, cap, cond, t)
		pc = i.Arg
		goto again
	case syntax.InstEmptyWidth:
		if syntax.EmptyOp(i.Arg)&^cond == 0 {
			pc = i.Out
			goto again
		}
	case syntax.InstNop:
		pc = i.Out
		goto again
	case syntax.InstCapture:
		if int(i.Arg) < len(cap) {
			old := cap[i.Arg]
			cap[i.Arg] = pos
			m.add(q, i.Out, pos, cap, cond, nil)
			cap[i.Arg] = old
		} else {
			pc = i.Out
			goto again
		}
	case syntax.InstMatch, syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
		if t == nil {
			t = m.alloc(i)
		} else {
			t.inst = i
		}
		if len(t.cap) > 0 && &t.cap[0] != &cap[0] {
			copy(t.cap, cap)
		}
		d.t = t
		t = nil
	}
	return t
}

// step runs the threads of runq on the rune c at pos and queues the ones
// that go on in nextq, for the position nextPos with empty-width context
// nextCond. The first thread to match cuts off those of lower priority.
func (m *machine) step(runq, nextq *queue, pos, nextPos int, c rune, nextCond syntax.EmptyOp) {
	for j := 0; j < len(runq.dense); j++ {
		d := &runq.dense[j]
		t := d.t
		if t == nil {
			continue
		}
		i := t.inst
		add := false
		switch i.Op {
		case syntax.InstMatch:
			if len(t.cap) > 0 {
				t.cap[1] = pos
				copy(m.matchcap, t.cap)
			}
			for _, d := range runq.dense[j+1:] {
				if d.t != nil {
					m.free = append(m.free, d.t)
				}
			}
			runq.dense = runq.dense[:0]
			m.matched = true
		case syntax.InstRune:
			add = i.MatchRune(c)
		case syntax.InstRune1:
			add = c == i.Rune[0]
		case syntax.InstRuneAny:
			add = true
		case syntax.InstRuneAnyNotNL:
			add = c != '\n'
		}
		if add {
			t = m.add(nextq, i.Out, nextPos, t.cap, nextCond, t)
		}
		if t != nil {
			m.free = append(m.free, t)
		}
	}
	runq.dense = runq.dense[:0]
}

// backtrack tries the program's ways through in, first the ones of higher
// priority, and leaves the groups of the first whole match in matchcap, as
// regexp's backtracker does. The record of what it has tried stays below
// maxBacktrack bits (the caller checks).
func (m *machine) backtrack(in []byte) bool {
	end := len(in)
	words := (len(m.prog.Inst)*(end+1) + 31) / 32
	if cap(m.visited) < words {
		m.visited = make([]uint32, words, maxBacktrack/32)
	}
	m.visited = m.visited[:words]
	clear(m.visited)
	for i := range m.matchcap {
		m.matchcap[i] = -1
		m.start[i] = -1
	}
	caps := m.start
	m.jobs = m.jobs[:0]
	m.push(uint32(m.prog.Start), 0, false, end)
	for len(m.jobs) > 0 {
		l := len(m.jobs) - 1
		pc, pos, arg := m.jobs[l].pc, m.jobs[l].pos, m.jobs[l].arg
		m.jobs = m.jobs[:l]
		goto skip
	check:
		if !m.visit(pc, pos, end) {
			continue
		}
	skip:
		switch i := &m.prog.Inst[pc]; i.Op {
		case syntax.InstFail:
			continue
		case syntax.InstAlt, syntax.InstAltMatch:
			if arg {
				arg = false
				pc = i.Arg
				goto check
			}
			m.push(pc, pos, true, end)
			pc = i.Out
			goto check
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			r, width := step(in, pos)
			if width == 0 {
				continue
			}
			switch i.Op {
			case syntax.InstRune:
				if !i.MatchRune(r) {
					continue
				}
			case syntax.InstRune1:
				if r != i.Rune[0] {
					continue
				}
			case syntax.InstRuneAnyNotNL:
				if r == '\n' {
					continue
				}
			}
			pos += width
			pc = i.Out
			goto check
		case syntax.InstCapture:
			if arg {
				// Coming back: the group's position before.
				caps[i.Arg] = pos
				continue
			}
			if int(i.Arg) < len(caps) {
				m.push(pc, caps[i.Arg], true, end)
				caps[i.Arg] = pos
			}
			pc = i.Out
			goto check
		case syntax.InstEmptyWidth:
			before, next := rune(-1), rune(-1)
			if pos > 0 {
				before, _ = utf8.DecodeLastRune(in[:pos])
			}
			if pos < end {
				next, _ = step(in, pos)
			}
			if syntax.EmptyOp(i.Arg)&^syntax.EmptyOpContext(before, next) != 0 {
				continue
			}
			pc = i.Out
			goto check
		case syntax.InstNop:
			pc = i.Out
			goto check
		case syntax.InstMatch:
			// The program ends with \z: this is a whole match, and the
			// first one found has the highest priority.
			copy(m.matchcap, caps)
			m.matchcap[1] = pos
			return true
		}
	}
	return false
}

func (m *machine) push(pc uint32, pos int, arg bool, end int) {
	if m.prog.Inst[pc].Op != syntax.InstFail && (arg || m.visit(pc, pos, end)) {
		m.jobs = append(m.jobs, job{pc: pc, arg: arg, pos: pos})
	}
}

// visit records that the backtracker is at instruction pc and position pos,
// and reports whether it had not been there before.
func (m *machine) visit(pc uint32, pos, end int) bool {
	n := uint(int(pc)*(end+1) + pos)
	if m.visited[n/32]&(1<<(n&31)) != 0 {
		return false
	}
	m.visited[n/32] |= 1 << (n & 31)
	return true
}
