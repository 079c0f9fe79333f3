package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodEvent is one event of a pod watch and when this process read it.
type PodEvent struct {
	Type string
	Pod  corev1.Pod
	At   time.Time
}

// WatchPods watches the pods of namespace default matching selector,
// straight from the apiserver as the admin. It returns once the apiserver
// has answered, so every pod created after it is seen from its ADDED
// event on; the watch ends with ctx.
func (n *Node) WatchPods(ctx context.Context, t testing.TB, selector string) <-chan PodEvent {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(n.pki.path("admin.crt"), n.pki.path("admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(n.pki.path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}}}
	u := fmt.Sprintf("https://%s:%d/api/v1/namespaces/default/pods?watch=true&labelSelector=%s", n.IP, apiserverPort, url.QueryEscape(selector))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("watch pods %s: %v", selector, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("watch pods %s: %s", selector, resp.Status)
	}
	ch := make(chan PodEvent, 256)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev struct {
				Type   string     `json:"type"`
				Object corev1.Pod `json:"object"`
			}
			if err := dec.Decode(&ev); err != nil {
				return
			}
			select {
			case ch <- PodEvent{Type: ev.Type, Pod: ev.Object, At: time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// PodsToReady creates the pods of manifest (count of them, all matching
// selector) and returns each one's time from creation to Ready as one
// watch saw them: from its ADDED event to the first event showing it
// Ready.
func (n *Node) PodsToReady(t testing.TB, selector, manifest string, count int, timeout time.Duration) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	events := n.WatchPods(ctx, t, selector)
	n.Apply(t, manifest)
	added := map[string]time.Time{}
	var lat []time.Duration
	for len(lat) < count {
		var (
			ev PodEvent
			ok bool
		)
		select {
		case ev, ok = <-events:
			if !ok {
				t.Fatalf("the pod watch (%s) ended with %d of %d pods Ready", selector, len(lat), count)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d pods (%s) Ready within %s", len(lat), count, selector, timeout)
		}
		name := ev.Pod.Name
		if ev.Type == "ADDED" {
			added[name] = ev.At
		}
		if start, ok := added[name]; ok && podReady(&ev.Pod) {
			lat = append(lat, ev.At.Sub(start))
			delete(added, name)
		}
	}
	return lat
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
