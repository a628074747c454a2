package serve

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Probe asks a service on this machine whether it is ready: GET /readyz on
// its HTTP address (a wildcard host means loopback). It is what container
// health checks run, since the images carry no shell or curl. Over TLS the
// certificate is not verified: the probe talks to its own container.
func Probe(httpAddr string, useTLS bool) error {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return fmt.Errorf("probe: --http-addr %q: %w", httpAddr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	client := &http.Client{Timeout: 3 * time.Second}
	if useTLS {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback self-probe
	}
	resp, err := client.Get(scheme + "://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: not ready (%s)", resp.Status)
	}
	return nil
}
