package ses

import (
	"bytes"
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// PlainText renders an HTML email body as the plain-text alternative sent
// next to it. It reads the markup with the golang.org/x/net/html tokenizer
// (which also decodes character references such as &amp; and &nbsp;) and:
//
//   - drops markup, comments, and the contents of head, title, script,
//     style and template;
//   - collapses runs of white space as a browser does, except inside pre;
//   - ends a line at br, tr, li and div, and a paragraph (a blank line) at
//     p, h1–h6, ul, ol, table, blockquote and hr; list items start with "- ";
//   - keeps a link's target as "text (url)", or the bare url when the link
//     has no text; the target is left out when it repeats the text (also as
//     mailto:/tel:) or is a fragment or javascript: link;
//   - trims trailing white space and leaves at most one blank line in a row.
func PlainText(body string) string {
	w := &textWriter{}
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// io.EOF, or input the tokenizer cannot read past: render what
			// was read.
			return w.finish()
		case html.TextToken:
			if w.skip == 0 {
				w.text(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			var href string
			if a == atom.A && hasAttr {
				href = attr(z, "href")
			}
			w.start(a, href, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			w.end(atom.Lookup(name))
		}
	}
}

// attr returns the value of the attribute key of the current tag.
func attr(z *html.Tokenizer, key string) string {
	for {
		k, v, more := z.TagAttr()
		if string(k) == key {
			return strings.TrimSpace(string(v))
		}
		if !more {
			return ""
		}
	}
}

// textWriter accumulates the text with pending white space and line breaks,
// so that nothing is written twice and nothing trails.
type textWriter struct {
	b bytes.Buffer
	// space: white space seen since the last written text.
	space bool
	// breaks: line breaks wanted before the next text (1 = new line,
	// 2 = blank line).
	breaks int
	// skip > 0 inside elements whose text is not shown.
	skip int
	// pre > 0 inside pre: white space is kept.
	pre int
	// link is the open <a>: its target and where its text starts.
	link *link
}

type link struct {
	href  string
	start int
}

// skipped are the elements whose contents never show.
var skipped = map[atom.Atom]bool{
	atom.Head: true, atom.Title: true, atom.Script: true, atom.Style: true, atom.Template: true,
}

// lineBreaks says how many line breaks an element's start and end make.
var lineBreaks = map[atom.Atom]int{
	atom.Br: 1, atom.Div: 1, atom.Li: 1, atom.Tr: 1, atom.Dt: 1, atom.Dd: 1,
	atom.Section: 1, atom.Article: 1, atom.Header: 1, atom.Footer: 1, atom.Center: 1,
	atom.P: 2, atom.H1: 2, atom.H2: 2, atom.H3: 2, atom.H4: 2, atom.H5: 2, atom.H6: 2,
	atom.Ul: 2, atom.Ol: 2, atom.Dl: 2, atom.Table: 2, atom.Blockquote: 2, atom.Hr: 2, atom.Pre: 2,
}

func (w *textWriter) start(a atom.Atom, href string, selfClosing bool) {
	switch {
	case skipped[a]:
		if !selfClosing {
			w.skip++
		}
		return
	case a == atom.Body:
		// A <head> left open ends where the body starts.
		w.skip = 0
		return
	}
	if n := lineBreaks[a]; n > 0 {
		w.lineBreak(n)
	}
	switch a {
	case atom.Li:
		w.write("- ")
	case atom.Td, atom.Th:
		w.space = true
	case atom.Pre:
		if !selfClosing {
			w.pre++
		}
	case atom.A:
		if !selfClosing {
			w.link = &link{href: href, start: w.b.Len()}
		}
	}
}

func (w *textWriter) end(a atom.Atom) {
	switch {
	case skipped[a]:
		if w.skip > 0 {
			w.skip--
		}
		return
	case a == atom.Br:
		// </br> is read as <br> by browsers.
		w.lineBreak(1)
		return
	}
	switch a {
	case atom.Pre:
		if w.pre > 0 {
			w.pre--
		}
	case atom.Td, atom.Th:
		w.space = true
	case atom.A:
		w.closeLink()
	}
	if n := lineBreaks[a]; n > 0 {
		w.lineBreak(n)
	}
}

// closeLink appends " (url)" to the link text, or the url alone when the
// link has no text.
func (w *textWriter) closeLink() {
	l := w.link
	w.link = nil
	if l == nil || l.href == "" || l.start > w.b.Len() {
		return
	}
	href := l.href
	lower := strings.ToLower(href)
	if strings.HasPrefix(href, "#") || strings.HasPrefix(lower, "javascript:") {
		return
	}
	text := strings.TrimSpace(w.b.String()[l.start:])
	switch {
	case text == "":
		w.write(href)
	case text == href,
		strings.HasPrefix(lower, "mailto:") && text == href[len("mailto:"):],
		strings.HasPrefix(lower, "tel:") && text == href[len("tel:"):]:
	default:
		// Written directly: white space pending after the text stays
		// pending after the url.
		w.b.WriteString(" (" + href + ")")
	}
}

func (w *textWriter) lineBreak(n int) {
	w.breaks = max(w.breaks, n)
	w.space = false
}

// text writes a text token, collapsing its white space unless in pre.
func (w *textWriter) text(t []byte) {
	if w.pre > 0 {
		s := strings.ReplaceAll(string(t), "\r\n", "\n")
		if s == "" {
			return
		}
		w.flush()
		w.b.WriteString(s)
		return
	}
	for _, r := range string(t) {
		if unicode.IsSpace(r) { // includes U+00A0 (&nbsp;)
			w.space = true
			continue
		}
		w.flush()
		w.b.WriteRune(r)
	}
}

// write writes s as text (white space in it is kept).
func (w *textWriter) write(s string) {
	w.flush()
	w.b.WriteString(s)
}

// flush writes the pending line breaks or space before new text. Nothing
// is written at the very start.
func (w *textWriter) flush() {
	if w.b.Len() == 0 {
		w.breaks, w.space = 0, false
		return
	}
	if w.breaks > 0 {
		w.b.WriteString(strings.Repeat("\n", w.breaks))
	} else if w.space {
		if last := w.b.Bytes()[w.b.Len()-1]; last != '\n' && last != ' ' {
			w.b.WriteByte(' ')
		}
	}
	w.breaks, w.space = 0, false
}

// finish trims the end of every line and keeps at most one blank line in a row.
func (w *textWriter) finish() string {
	lines := strings.Split(w.b.String(), "\n")
	out := make([]string, 0, len(lines))
	blank := true // drops leading blank lines
	for _, l := range lines {
		// Text outside pre never starts a line with white space, so only
		// the right side is trimmed (pre keeps its indentation).
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, l)
		blank = false
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}
