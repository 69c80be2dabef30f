package ses_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/channel/ses"
)

func TestPlainText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, html, want string
	}{
		{"Empty", "", ""},
		{"PlainString", "just text", "just text"},
		{"Entities", "Tom &amp; Jerry &lt;3 &quot;cheese&quot; &#8212; caf&eacute;&nbsp;&nbsp;ok", `Tom & Jerry <3 "cheese" — café ok`},
		{"Whitespace", "  Hello,\n\t  world   \n ", "Hello, world"},
		{"Br", "line one<br>line two<br/>line three<BR />four", "line one\nline two\nline three\nfour"},
		{"Paragraphs", "<p>First</p><p>Second</p>", "First\n\nSecond"},
		{"Divs", "<div>a</div><div>b</div>", "a\nb"},
		{"Headings", "<h1>Title</h1>Body<h2>Sub</h2><p>More</p>", "Title\n\nBody\n\nSub\n\nMore"},
		{"List", "<p>Items:</p><ul><li>one</li><li>two <b>bold</b></li></ul><p>after</p>", "Items:\n\n- one\n- two bold\n\nafter"},
		{"CollapseBlankLines", "<p>a</p><br><br><br><p></p><div></div><p>b</p>", "a\n\nb"},
		{"Link", `Read <a href="https://example.com/x">the docs</a> now`, "Read the docs (https://example.com/x) now"},
		{"LinkEscapedHref", `<a href="https://e.com/?a=1&amp;b=2">go</a>`, "go (https://e.com/?a=1&b=2)"},
		{"LinkTextIsURL", `<a href="https://example.com">https://example.com</a>`, "https://example.com"},
		{"LinkNoText", `<a href="https://example.com/logo"><img src="logo.png"></a>`, "https://example.com/logo"},
		{"Mailto", `<a href="mailto:help@example.com">help@example.com</a>`, "help@example.com"},
		{"MailtoWithText", `<a href="mailto:help@example.com">Email us</a>`, "Email us (mailto:help@example.com)"},
		{"FragmentLink", `<a href="#top">Back to top</a>`, "Back to top"},
		{"NoHref", `<a name="x">anchor</a>`, "anchor"},
		{"LinkSpaceKept", `<a href="https://a.example">A </a>B`, "A (https://a.example) B"},
		{"HeadScriptStyle", `<html><head><title>T</title><style>p{color:red}</style></head><body><script>var x = "<p>no</p>";</script><p>Yes</p></body></html>`, "Yes"},
		{"Comment", "a<!-- hidden <p>x</p> -->b", "ab"},
		{"Table", "<table><tr><td>Name</td><td>Sarah</td></tr><tr><td>When</td><td>10:00</td></tr></table>", "Name Sarah\nWhen 10:00"},
		{"Pre", "<p>Code:</p><pre>  indented\n    more</pre><p>end</p>", "Code:\n\n  indented\n    more\n\nend"},
		{"Inline", "Hello <b>bold</b><i>italic</i> <span>x</span>", "Hello bolditalic x"},
		{"Malformed", "<p>unclosed <b>bold<div>block", "unclosed bold\nblock"},
		{"AttributeWithAngle", `<a title="a > b" href="https://e.com">x</a>`, "x (https://e.com)"},
		{"FullDocument", `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
			<div style="font-family:Arial">
			  <p>Hi Sarah,</p>
			  <p>Your demo is on <strong>Thursday</strong>.<br>
			     Join here: <a href="https://meet.example.com/abc">meeting link</a></p>
			  <p>— The Team</p>
			</div></body></html>`,
			"Hi Sarah,\n\nYour demo is on Thursday.\nJoin here: meeting link (https://meet.example.com/abc)\n\n— The Team"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ses.PlainText(tc.html); got != tc.want {
				t.Errorf("PlainText(%q)\n got %q\nwant %q", tc.html, got, tc.want)
			}
		})
	}
}
