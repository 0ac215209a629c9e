package attachment_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/noticerelay/noticerelay/pkg/attachment"
)

func TestParseUpload(t *testing.T) {
	for _, c := range []struct {
		name, query, ctype, disp string
		want                     attachment.Upload
		fields                   []string
	}{
		{"defaults", "", "image/png", "", attachment.Upload{MediaType: "image/png", Relevance: "reported"}, nil},
		{"all given", "?relevance=supplemental", "Text/Plain; charset=UTF-8", `attachment; filename="chat log.txt"`,
			attachment.Upload{MediaType: "text/plain; charset=UTF-8", Filename: "chat log.txt", Relevance: "supplemental"}, nil},
		{"RFC 5987 name", "", "image/jpeg", `attachment; filename*=UTF-8''Bild%20%C3%BC.jpg`,
			attachment.Upload{MediaType: "image/jpeg", Filename: "Bild ü.jpg", Relevance: "reported"}, nil},
		{"no type", "", "", "", attachment.Upload{Relevance: "reported"}, []string{"Content-Type"}},
		{"not a type", "", "png", "", attachment.Upload{Relevance: "reported"}, []string{"Content-Type"}},
		{"a path", "", "image/png", `attachment; filename="../../etc/passwd"`, attachment.Upload{}, []string{"Content-Disposition"}},
		{"inline", "", "image/png", `inline; filename="a.png"`, attachment.Upload{}, []string{"Content-Disposition"}},
		{"control", "", "image/png", "attachment; filename=\"a\x01.png\"", attachment.Upload{}, []string{"Content-Disposition"}},
		{"too long", "", "image/png", `attachment; filename="` + strings.Repeat("a", 256) + `"`, attachment.Upload{}, []string{"Content-Disposition"}},
		{"everything wrong", "?relevance=maybe&size=3", "", `form-data`, attachment.Upload{},
			[]string{"Content-Type", "Content-Disposition", "size", "relevance"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/notices/x/attachments"+c.query, nil)
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			if c.disp != "" {
				r.Header.Set("Content-Disposition", c.disp)
			}
			got, errs := attachment.ParseUpload(r)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
			}
			slices.Sort(fields)
			want := slices.Clone(c.fields)
			slices.Sort(want)
			if !slices.Equal(fields, want) {
				t.Fatalf("errors %v, want fields %v", errs, want)
			}
			if len(want) == 0 && got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
