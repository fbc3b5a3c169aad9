package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runCerts writes a throw-away PKI for a test control plane into --dir:
//
//	ca.crt, ca.key            certificate authority (client CA and serving CA)
//	serving.crt, serving.key  kube-apiserver serving certificate for 127.0.0.1, ::1 and localhost
//	admin.crt, admin.key      client certificate CN=<--admin-user>, O=system:masters
//	sa.key, sa.pub            service-account token signing key pair
func runCerts(name string, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (required)")
	adminUser := fs.String("admin-user", "microseg-admin", "common name of the admin client certificate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "certs: --dir is required")
		return 2
	}
	if err := writePKI(*dir, *adminUser); err != nil {
		fmt.Fprintf(os.Stderr, "certs: %v\n", err)
		return 1
	}
	return 0
}

// runClientCert issues a client certificate signed by the CA in --ca-dir.
func runClientCert(name string, args []string) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	caDir := fs.String("ca-dir", "", "directory holding ca.crt and ca.key (required)")
	cn := fs.String("cn", "", "common name = Kubernetes user name (required)")
	out := fs.String("out", "", "output path prefix; writes <out>.crt and <out>.key (required)")
	var orgs stringList
	fs.Var(&orgs, "org", "organisation = Kubernetes group (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *caDir == "" || *cn == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "client-cert: --ca-dir, --cn and --out are required")
		return 2
	}
	ca, caKey, err := loadCA(*caDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "client-cert: %v\n", err)
		return 1
	}
	if err := issue(*out, ca, caKey, pkix.Name{CommonName: *cn, Organization: orgs}, nil, x509.ExtKeyUsageClientAuth); err != nil {
		fmt.Fprintf(os.Stderr, "client-cert: %v\n", err)
		return 1
	}
	return 0
}

func writePKI(dir, adminUser string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "microseg-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), caKey); err != nil {
		return err
	}
	serving := &x509.Certificate{
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
	}
	if err := issue(filepath.Join(dir, "serving"), ca, caKey, pkix.Name{CommonName: "kube-apiserver"}, serving, x509.ExtKeyUsageServerAuth); err != nil {
		return err
	}
	if err := issue(filepath.Join(dir, "admin"), ca, caKey, pkix.Name{CommonName: adminUser, Organization: []string{"system:masters"}}, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

func issue(prefix string, ca *x509.Certificate, caKey crypto.Signer, subject pkix.Name, base *x509.Certificate, usage x509.ExtKeyUsage) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{}
	if base != nil {
		tmpl = base
	}
	tmpl.SerialNumber = serial()
	tmpl.Subject = subject
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(prefix+".crt", "CERTIFICATE", der); err != nil {
		return err
	}
	return writeKey(prefix+".key", key)
}

func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("ca.crt or ca.key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("ca.key is not a signing key")
	}
	return cert, signer, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
