package webui

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"campaignd"
)

// routes builds the router: every route of the console and the API is
// listed here.
func (s *Server) routes(trustedOrigins []string) (http.Handler, error) {
	r := chi.NewRouter()
	s.router = r
	r.Use(s.recoverer, s.securityHeaders, s.accessLog, middleware.GetHead)

	// Cross-origin browser POSTs are refused everywhere, the API included:
	// browsers cache Basic credentials and would send them along.
	cop := http.NewCrossOriginProtection()
	for _, o := range trustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("webui: trusted origin %q: %w", o, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, campaignd.Errorf(campaignd.EFORBIDDEN, "Cross-origin request refused."))
	}))
	r.Use(cop.Handler)

	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/static/{name}", s.static.ServeHTTP)
	if s.o.MetricsHandler != nil {
		r.Method(http.MethodGet, "/metrics", s.o.MetricsHandler)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, campaignd.Errorf(campaignd.ENOTFOUND, "Page not found."))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, &errMethod{method: r.Method, allow: s.allowed(r)})
	})

	// The console: cookie sessions, CSRF tokens on every POST.
	r.Get("/login", s.handleLoginPage)
	r.Post("/login", s.handleLogin)
	r.Group(func(r chi.Router) {
		r.Use(s.requireSession, s.requireCSRF)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/broadcasts", http.StatusSeeOther)
		})
		r.Post("/logout", s.handleLogout)
		r.Post("/language", s.handleLanguage)
		r.Get("/broadcasts", s.handleBroadcasts)
		r.Get("/broadcasts/{id}", s.handleBroadcast)
		r.Get("/broadcasts/{id}/panel", s.handlePanel)
		r.Get("/broadcasts/{id}/row", s.handleRow)
		r.Get("/broadcasts/{id}/export.csv", s.handleExport)
		r.Get("/files", s.handleFiles)
		r.Get("/files/{id}", s.handleFile)
		r.Get("/reports", s.handleReports)
		r.Get("/audit", s.handleAudit)
		r.Get("/help", s.handleHelp)
		r.Get("/reports/{file}", s.handleReportCSV)
		s.suppressionsRoutes(r)
		r.Group(func(r chi.Router) {
			r.Use(s.requireAct)
			r.Post("/broadcasts/{id}/{action}", s.handleAction)
			r.Post("/reports/{day}/push", s.handlePush)
			s.suppressionsActRoutes(r)
		})
	})
	s.suppressionsImportRoute(r)

	// The API: HTTP Basic auth only (a session cookie is never looked at),
	// so it needs no CSRF token.
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(s.requireBasicAuth)
		r.Get("/broadcasts", s.apiBroadcasts)
		r.Get("/broadcasts/{id}", s.apiBroadcast)
		r.Get("/broadcasts/{id}/messages.csv", s.handleExport)
		r.Get("/files", s.apiFiles)
		r.Get("/files/{id}", s.apiFile)
		r.Get("/files/{id}/errors", s.apiFileErrors)
		r.Get("/reports", s.apiReports)
		r.Get("/audit", s.apiAudit)
		r.Get("/reports/{file}", s.handleReportCSV)
		s.suppressionsAPIRoutes(r)
		r.Group(func(r chi.Router) {
			r.Use(s.requireAct)
			r.Post("/broadcasts/{id}/{action}", s.apiAction)
			r.Delete("/broadcasts/{id}", s.apiDelete)
			r.Post("/reports/{day}/push", s.apiPush)
			s.suppressionsAPIActRoutes(r)
		})
	})
	return r, nil
}

// routedMethods are the methods the Allow header of a 405 may list.
var routedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete}

// allowed lists the methods routed for r's path (chi does not pass them to
// a custom 405 handler). HEAD is served wherever GET is (middleware.GetHead).
func (s *Server) allowed(r *http.Request) []string {
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	var out []string
	for _, m := range routedMethods {
		if s.router.Find(chi.NewRouteContext(), m, p) != "" ||
			(m == http.MethodHead && s.router.Find(chi.NewRouteContext(), http.MethodGet, p) != "") {
			out = append(out, m)
		}
	}
	return out
}

// securityHeaders sets the headers every response carries. The CSP allows
// only this origin and no inline script or style: the console's behaviour
// lives in static files.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.o.TLS {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// accessLog logs every request at debug level.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.log.Debug("request", keyMethod, r.Method, keyPath, r.URL.Path, keyStatus, ww.Status(),
			keyDur, time.Since(start), keyRemote, remoteIP(r))
	})
}

// recoverer turns a panic in a handler into a logged 500.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", keyPath, r.URL.Path, slog.Any(keyError, v))
				s.Error(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// remoteIP is the client's address. X-Forwarded-For is not trusted (see
// notes on chi's deprecated RealIP).
func remoteIP(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return r.RemoteAddr
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ok, detail := s.o.Backend.Ready(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	s.writeJSON(w, r, status, struct {
		Ready  bool              `json:"ready"`
		Detail map[string]string `json:"detail"`
	}{ok, detail})
}
