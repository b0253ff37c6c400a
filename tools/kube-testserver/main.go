// kube-testserver runs a real kube-apiserver (k8s.io/kubernetes, in process) on top of an
// embedded etcd (go.etcd.io/etcd/server/v3/embed), both on free 127.0.0.1 ports, for tests.
//
// Usage:
//
//	kube-testserver --dir DIR [--exit-on-stdin-close] [--remove-dir-on-exit] [--node-ip IP] [-- EXTRA-KUBE-APISERVER-FLAGS...]
//
// It makes a fresh cluster every start (DIR/etcd and DIR/pki are recreated): its own CA, a
// serving certificate for 127.0.0.1 and localhost, a client CA with an admin client certificate
// (CN=admin, O=system:masters) and a service-account signing key, so TokenRequest works. It writes
// DIR/kubeconfig (cluster-admin), then, once /readyz answers 200, DIR/url and one line
// "ready https://127.0.0.1:PORT" on stdout. Logs go to DIR/apiserver.log (klog and everything
// else the process writes to stderr) and DIR/etcd.log; every request is audited at Metadata level
// to DIR/audit.log (JSON lines; one ResponseComplete event per request, or Panic; the
// RequestReceived stage is omitted, and long-running watches also log ResponseStarted).
//
// It stops on SIGTERM or SIGINT, and with --exit-on-stdin-close also when stdin reaches EOF: the
// API server shuts down, etcd is closed, exit status 0. If that takes more than --stop-timeout
// (10s) it exits anyway with status 3. Startup failures exit with status 1. With
// --remove-dir-on-exit a clean stop also removes DIR (a test binary holds the server in a static
// that is never dropped, so nothing else would).
//
// No controller-manager runs: no EndpointSlices for Services, no garbage collection, deleted
// namespaces stay Terminating, no default ServiceAccount (the ServiceAccount admission plugin is
// disabled so pods can be created without one).
//
// --node-ip IP is the API server of a cluster with a node (scripts/kube-testcluster.sh): it
// listens on IP instead of 127.0.0.1 (an address of this machine that pods reach, the pod bridge's
// own), advertises it (so the `kubernetes` Service's endpoints, kept by the API server's lease
// reconciler, lead there), puts it in the serving certificate, and turns the ServiceAccount
// admission plugin on, so pods get their token volume as in a real cluster.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "time/tzdata" // as in cmd/kube-apiserver: time zones for CronJob validation

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as in cmd/kube-apiserver
	_ "k8s.io/component-base/metrics/prometheus/version"  // as in cmd/kube-apiserver
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

var origStderr io.Writer = os.Stderr

func fail(format string, args ...any) {
	msg := fmt.Sprintf("kube-testserver: "+format+"\n", args...)
	fmt.Fprint(origStderr, msg)
	if origStderr != os.Stderr {
		fmt.Fprint(os.Stderr, msg) // into apiserver.log too
	}
	os.Exit(1)
}

func main() {
	dir := flag.String("dir", "", "directory for certificates, kubeconfig, url, logs and etcd data (must exist)")
	exitOnStdinClose := flag.Bool("exit-on-stdin-close", false, "shut down when standard input reaches EOF")
	readyTimeout := flag.Duration("ready-timeout", 120*time.Second, "give up if /readyz is not 200 by then")
	stopTimeout := flag.Duration("stop-timeout", 10*time.Second, "exit anyway (status 3) if shutdown takes longer")
	nodeIP := flag.String("node-ip", "", "listen on and advertise this address instead of 127.0.0.1, with the ServiceAccount admission plugin on (a cluster with a node)")
	removeDir := flag.Bool("remove-dir-on-exit", false, "remove --dir and everything in it after a clean stop (a test harness that never stops it itself leaves nothing behind)")
	restart := flag.Bool("restart", false, "start again on the cluster an earlier run left in --dir: the same etcd data, certificates and ports (an API server restart)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: kube-testserver --dir DIR [--exit-on-stdin-close] [--remove-dir-on-exit] [-- EXTRA-KUBE-APISERVER-FLAGS...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	host := "127.0.0.1"
	if *nodeIP != "" {
		ip := net.ParseIP(*nodeIP)
		if ip == nil || ip.To4() == nil {
			fail("--node-ip %q: not an IPv4 address", *nodeIP)
		}
		host = ip.String()
	}
	d, err := filepath.Abs(*dir)
	if err != nil {
		fail("%v", err)
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		fail("--dir %s: not a directory", *dir)
	}
	// A fresh cluster each start: stale url/etcd data must never be mistaken for this run's.
	// With --restart only the url goes: it is written again once this run is ready.
	fresh := []string{"url", "kubeconfig", "etcd", "pki", "ports"}
	if *restart {
		fresh = []string{"url"}
	}
	for _, p := range fresh {
		if err := os.RemoveAll(filepath.Join(d, p)); err != nil {
			fail("%v", err)
		}
	}

	// Everything the API server (klog) or the Go runtime writes to stderr goes to apiserver.log.
	logf, err := os.OpenFile(filepath.Join(d, "apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		fail("%v", err)
	}
	if fd, err := syscall.Dup(2); err == nil {
		origStderr = os.NewFile(uintptr(fd), "stderr")
	}
	if err := syscall.Dup3(int(logf.Fd()), 2, 0); err != nil {
		fail("redirecting stderr: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopReason := make(chan string, 4)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		stopReason <- "signal " + s.String()
	}()
	if *exitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stopReason <- "stdin closed"
		}()
	}
	go func() {
		reason := <-stopReason
		klog.Infof("kube-testserver: stopping (%s)", reason)
		cancel()
		time.Sleep(*stopTimeout)
		fmt.Fprintf(origStderr, "kube-testserver: shutdown took longer than %s, exiting anyway\n", *stopTimeout)
		klog.Flush()
		os.Exit(3)
	}()

	pki := filepath.Join(d, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		fail("%v", err)
	}
	var c *creds
	if *restart {
		c, err = loadPKI(pki)
	} else {
		c, err = makePKI(pki, net.ParseIP(host))
	}
	if err != nil {
		fail("certificates: %v", err)
	}
	var kept *ports
	if *restart {
		if kept, err = readPorts(filepath.Join(d, "ports")); err != nil {
			fail("--restart: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "audit-policy.yaml"), []byte(auditPolicy), 0o644); err != nil {
		fail("%v", err)
	}

	etcd, etcdURL, etcdPorts, err := startEtcd(ctx, d, kept)
	if err != nil {
		fail("etcd: %v (see %s)", err, filepath.Join(d, "etcd.log"))
	}

	listenAddr := host + ":0"
	if kept != nil {
		listenAddr = host + ":" + strconv.Itoa(kept.api)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		fail("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := writeFileAtomic(filepath.Join(d, "ports"), []byte(fmt.Sprintf("%d %d %d\n", port, etcdPorts[0], etcdPorts[1]))); err != nil {
		fail("%v", err)
	}
	serverURL := "https://" + host + ":" + strconv.Itoa(port)

	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + host,
		"--advertise-address=" + host,
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + pki,
		"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
		"--client-ca-file=" + filepath.Join(pki, "client-ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--audit-policy-file=" + filepath.Join(d, "audit-policy.yaml"),
		"--audit-log-path=" + filepath.Join(d, "audit.log"),
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--profiling=false",
	}
	if *nodeIP == "" {
		// No node: nothing keeps the `kubernetes` Service's endpoints and nothing makes
		// ServiceAccounts, so pods are admitted without one.
		args = append(args, "--endpoint-reconciler-type=none", "--disable-admission-plugins=ServiceAccount")
	}
	args = append(args, flag.Args()...)

	apiDone := make(chan error, 1)
	go func() { apiDone <- runAPIServer(ctx, args, ln) }()

	if err := writeKubeconfig(filepath.Join(d, "kubeconfig"), serverURL, c); err != nil {
		fail("%v", err)
	}

	select {
	case err := <-waitReady(ctx, serverURL, c, *readyTimeout):
		if err != nil {
			cancel()
			etcd.Close()
			fail("%v (see %s)", err, filepath.Join(d, "apiserver.log"))
		}
	case err := <-apiDone:
		etcd.Close()
		if ctx.Err() != nil {
			removeIf(*removeDir, d)
			os.Exit(0) // stopped while starting
		}
		fail("kube-apiserver exited: %v (see %s)", err, filepath.Join(d, "apiserver.log"))
	}
	if err := writeFileAtomic(filepath.Join(d, "url"), []byte(serverURL+"\n")); err != nil {
		fail("%v", err)
	}
	fmt.Printf("ready %s\n", serverURL)
	klog.Infof("kube-testserver: ready %s", serverURL)

	var apiErr error
	select {
	case apiErr = <-apiDone:
	case <-etcd.Server.StopNotify():
		apiErr = errors.New("etcd stopped")
		cancel()
		<-apiDone
	}
	etcd.Close()
	klog.Flush()
	if ctx.Err() == nil {
		fail("kube-apiserver exited unexpectedly: %v (see %s)", apiErr, filepath.Join(d, "apiserver.log"))
	}
	klog.Infof("kube-testserver: stopped")
	klog.Flush()
	removeIf(*removeDir, d)
	os.Exit(0)
}

// removeIf removes the server's directory after a clean stop, when asked to: its etcd data,
// certificates and logs go with it. A stop that failed keeps them for whoever looks into it.
func removeIf(remove bool, dir string) {
	if !remove {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "kube-testserver: removing %s: %v\n", dir, err)
	}
}

// runAPIServer does what app.NewAPIServerCommand's RunE does, with our context (so that stdin EOF
// can stop it too) and our listener (so the port is ours from the start).
func runAPIServer(ctx context.Context, args []string, ln net.Listener) error {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	featureGate.(featuregate.MutableFeatureGate).AddMetrics()
	s.GenericServerRunOptions.ComponentGlobalsRegistry.AddMetrics()
	return app.Run(ctx, completed)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ports are what a restart reuses: the API server's, etcd's client and peer ports.
type ports struct{ api, etcdClient, etcdPeer int }

func readPorts(path string) (*ports, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p ports
	if _, err := fmt.Sscanf(string(b), "%d %d %d", &p.api, &p.etcdClient, &p.etcdPeer); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &p, nil
}

// loadPKI reads the admin credentials makePKI wrote (the server's own files stay where they are).
func loadPKI(dir string) (*creds, error) {
	var c creds
	for name, dst := range map[string]*[]byte{"ca.crt": &c.caPEM, "admin.crt": &c.clientCertPEM, "admin.key": &c.clientKeyPEM} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		*dst = b
	}
	return &c, nil
}

// startEtcd starts a single-member etcd on two free loopback ports (client, peer); it retries
// with other ports if one was taken between picking and binding. With `kept`, it starts again
// on the ports and data of an earlier run.
func startEtcd(ctx context.Context, d string, kept *ports) (*embed.Etcd, string, [2]int, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cp, err := freePort()
		if err != nil {
			return nil, "", [2]int{}, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, "", [2]int{}, err
		}
		if kept != nil {
			cp, pp = kept.etcdClient, kept.etcdPeer
		}
		clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(cp)}
		peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(pp)}
		cfg := embed.NewConfig()
		cfg.Name = "kube-testserver"
		cfg.Dir = filepath.Join(d, "etcd")
		if kept == nil {
			_ = os.RemoveAll(cfg.Dir)
		}
		cfg.ListenClientUrls = []url.URL{clientURL}
		cfg.AdvertiseClientUrls = []url.URL{clientURL}
		cfg.ListenPeerUrls = []url.URL{peerURL}
		cfg.AdvertisePeerUrls = []url.URL{peerURL}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.Logger = "zap"
		cfg.LogLevel = "warn"
		cfg.LogOutputs = []string{filepath.Join(d, "etcd.log")}
		cfg.UnsafeNoFsync = true // test data only
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, clientURL.String(), [2]int{cp, pp}, nil
		case err := <-e.Err():
			e.Close()
			lastErr = err
		case <-time.After(60 * time.Second):
			e.Close()
			return nil, "", [2]int{}, errors.New("not ready after 60s")
		case <-ctx.Done():
			e.Close()
			os.Exit(0)
		}
		if kept != nil {
			break // the same ports again would fail the same way
		}
	}
	return nil, "", [2]int{}, lastErr
}

func waitReady(ctx context.Context, serverURL string, c *creds, timeout time.Duration) <-chan error {
	out := make(chan error, 1)
	go func() {
		client := &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{TLSClientConfig: c.clientTLS()},
		}
		deadline := time.Now().Add(timeout)
		last := "no answer"
		for time.Now().Before(deadline) {
			if ctx.Err() != nil {
				out <- errors.New("stopped while starting")
				return
			}
			resp, err := client.Get(serverURL + "/readyz")
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					out <- nil
					return
				}
				last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
			} else {
				last = err.Error()
			}
			time.Sleep(200 * time.Millisecond)
		}
		out <- fmt.Errorf("/readyz not 200 after %s; last answer: %s", timeout, last)
	}()
	return out
}

// --- certificates ---

type creds struct {
	caPEM, clientCertPEM, clientKeyPEM []byte
}

func (c *creds) clientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	pair, err := tls.X509KeyPair(c.clientCertPEM, c.clientKeyPEM)
	if err != nil {
		panic(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func newCA(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pemBlock("CERTIFICATE", der), nil
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// makePKI writes ca.crt, serving.{crt,key}, client-ca.crt, admin.{crt,key}, sa.{key,pub} to dir.
// The serving certificate names 127.0.0.1, the `kubernetes` Service's address and nodeIP.
func makePKI(dir string, nodeIP net.IP) (*creds, error) {
	ca, caKey, caPEM, err := newCA("kube-testserver-ca")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := newLeaf(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1"), nodeIP},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	clientCA, clientCAKey, clientCAPEM, err := newCA("kube-testserver-client-ca")
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := newLeaf(clientCA, clientCAKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"ca.crt":        caPEM,
		"serving.crt":   servingCert,
		"serving.key":   servingKey,
		"client-ca.crt": clientCAPEM,
		"admin.crt":     adminCert,
		"admin.key":     adminKey,
		"sa.key":        pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		"sa.pub":        pemBlock("PUBLIC KEY", saPub),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return &creds{caPEM: caPEM, clientCertPEM: adminCert, clientKeyPEM: adminKey}, nil
}

func writeKubeconfig(path, serverURL string, c *creds) error {
	b64 := base64.StdEncoding.EncodeToString
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kube-testserver
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: kube-testserver
  context:
    cluster: kube-testserver
    user: admin
    namespace: default
current-context: kube-testserver
`, serverURL, b64(c.caPEM), b64(c.clientCertPEM), b64(c.clientKeyPEM))
	return writeFileAtomic(path, []byte(kc))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
