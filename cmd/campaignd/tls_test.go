package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// writeCert writes a self-signed certificate for 127.0.0.1 into dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "campaignd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSFromConfig: ftp.tls = "required" refuses a plain login and takes an
// upload over AUTH TLS; web.tls_cert_file serves the console over HTTPS with
// Secure cookies.
func TestTLSFromConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir)
	c := testConfig(filepath.Join(dir, "data"))
	c.FTP.TLS, c.FTP.TLSCertFile, c.FTP.TLSKeyFile = "required", certFile, keyFile
	c.Web.TLSCertFile, c.Web.TLSKeyFile = certFile, keyFile
	m := MustRunMain(t, c)

	plain, err := ftp.Dial(m.FTP.Addr(), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Login(testFTPUser, testPass); err == nil {
		t.Fatal("plain login accepted with ftp.tls = required")
	}
	plain.Quit()
	conn, err := ftp.Dial(m.FTP.Addr(), ftp.DialWithTimeout(5*time.Second),
		ftp.DialWithExplicitTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4)}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Quit()
	if err := conn.Login(testFTPUser, testPass); err != nil {
		t.Fatal(err)
	}
	if err := conn.Stor("tls.csv", strings.NewReader(csvFile("", 2))); err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + m.WebAddr()
	resp, err := client.PostForm(base+"/login", url.Values{"username": {testAdmin}, "password": {testPass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Signed in (303 to the console) with a Secure session cookie.
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = secure || ck.Name == "__Host-campaignd" && ck.Secure && ck.Value != ""
	}
	if resp.StatusCode != http.StatusSeeOther || !secure || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("login over HTTPS: status %d, cookies %v, HSTS %q", resp.StatusCode, resp.Cookies(), resp.Header.Get("Strict-Transport-Security"))
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/files", nil)
	req.SetBasicAuth(testAdmin, testPass)
	resp, err = client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("API over HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()
}
