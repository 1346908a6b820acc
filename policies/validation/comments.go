package validation

// stripComments returns src with every `//` line comment and `/* */` block
// comment outside JSON strings replaced by spaces. Newlines are kept, so a
// byte offset into the result is a byte offset into what the user wrote and
// error positions stay true. An unterminated block comment is reported by
// its offset.
func stripComments(src []byte) ([]byte, int, bool) {
	out := make([]byte, len(src))
	copy(out, src)
	inString := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for i < len(out) && out[i] != '\n' {
				out[i] = ' '
				i++
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			start := i
			out[i], out[i+1] = ' ', ' '
			i += 2
			for ; ; i++ {
				if i+1 >= len(out) {
					return nil, start, false
				}
				if out[i] == '*' && out[i+1] == '/' {
					out[i], out[i+1] = ' ', ' '
					i++
					break
				}
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
		}
	}
	return out, 0, true
}

// lineCol turns a byte offset of text into a 1-based line and column.
func lineCol(text []byte, off int) (line, col int) {
	if off > len(text) {
		off = len(text)
	}
	line, col = 1, 1
	for _, c := range text[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
