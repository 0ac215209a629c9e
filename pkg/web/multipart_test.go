package web

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// TestMultipartCSRF checks that a multipart form passes only with its
// token as its first part, and that its route then reads the other parts.
func TestMultipartCSRF(t *testing.T) {
	a := &App{Sessions: &MemorySessions{}, Accounts: map[string]Account{}}
	if err := a.Parse(fstest.MapFS{}, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		mr := Multipart(r)
		if mr == nil {
			t.Error("a checked multipart form without its reader")
			return
		}
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			got = append(got, p.FormName()+"="+string(b))
		}
	})
	srv := httptest.NewServer(a.Handler(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(srv.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var token string
	for _, k := range res.Cookies() {
		if k.Name == "nr_csrf" {
			token = k.Value
		}
	}
	if token == "" {
		t.Fatal("no token cookie")
	}
	post := func(fields ...string) int {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for i := 0; i < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := mw.CreateFormFile("file", "a.txt")
				_, _ = fw.Write([]byte(fields[i+1]))
				continue
			}
			_ = mw.WriteField(fields[i], fields[i+1])
		}
		_ = mw.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/upload", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for name, fields := range map[string][]string{
		"no token":     {"file", "x"},
		"wrong token":  {"csrf", strings.Repeat("a", 43), "file", "x"},
		"token last":   {"file", "x", "csrf", token},
		"token a file": {"file", token},
	} {
		got = nil
		if st := post(fields...); st != http.StatusForbidden || got != nil {
			t.Errorf("%s: HTTP %d, the route read %v", name, st, got)
		}
	}
	if st := post("csrf", token, "note", "n", "file", "the file"); st != http.StatusOK ||
		strings.Join(got, ",") != "note=n,file=the file" {
		t.Errorf("with its token first: HTTP %d, the route read %v", st, got)
	}
}
