// Package deploy_test checks the deployment files offline: the compose file
// through docker-compose's own parser, the Kubernetes manifests by strict
// decoding into the API types, and every setting either passes to the
// binaries through their check-config subcommand.
package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func build(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{}
	for _, name := range []string{"authsvc", "predictsvc"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
		bins[name] = filepath.Join(dir, name)
	}
	return bins
}

// checkConfig runs `<bin> check-config` with exactly env (and PATH).
func checkConfig(t *testing.T, bin string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(bin, "check-config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s check-config with %v: %v\n%s", filepath.Base(bin), env, err, out)
	}
}

func TestComposeFile(t *testing.T) {
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-compose is not installed; .ci/run must install it")
		}
		t.Skip("SKIPPED: docker-compose is not installed (Debian package docker-compose); CI runs this")
	}
	cmd := exec.Command(compose, "-f", "docker-compose.yml", "config")
	cmd.Dir = repoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, stderr.String())
	}
	var doc struct {
		Services map[string]struct {
			Environment map[string]string `json:"environment"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `json:"condition"`
			} `json:"depends_on"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	bins := build(t)
	for _, name := range []string{"authsvc", "predictsvc"} {
		svc, ok := doc.Services[name]
		if !ok {
			t.Fatalf("compose has no %s service", name)
		}
		if strings.Join(svc.Healthcheck.Test, " ") != "CMD /"+name+" probe" {
			t.Errorf("%s healthcheck = %v, want the probe subcommand", name, svc.Healthcheck.Test)
		}
		checkConfig(t, bins[name], svc.Environment)
	}
	if doc.Services["authsvc"].DependsOn["postgres"].Condition != "service_healthy" ||
		doc.Services["predictsvc"].DependsOn["authsvc"].Condition != "service_healthy" {
		t.Error("services do not wait for healthy dependencies")
	}
	if !strings.HasPrefix(doc.Services["authsvc"].Environment["AUTHSVC_DATABASE_URL"], "postgres://") {
		t.Error("authsvc in compose is not on PostgreSQL")
	}
	if _, ok := doc.Volumes["postgres-data"]; !ok {
		t.Error("no volume for the database")
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot:nonroot", "distroless/static"} {
		if strings.Count(text, want) == 0 {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(text, "USER nonroot:nonroot") != 2 {
		t.Error("both images must run as the non-root user")
	}
	for _, secret := range []string{"PASSWORD", "SECRET", "PRIVATE KEY", "DATABASE_URL"} {
		if strings.Contains(strings.ToUpper(text), secret) {
			t.Errorf("Dockerfile mentions %q: no secret may be baked into an image", secret)
		}
	}
}

type manifests struct {
	deployments map[string]appsv1.Deployment
	services    map[string]corev1.Service
	pdbs        []policyv1.PodDisruptionBudget
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	configMaps  map[string]corev1.ConfigMap
	secrets     map[string]corev1.Secret
}

// loadManifests decodes every document strictly: an unknown or misspelt
// field is an error, as the API server would reject it.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{deployments: map[string]appsv1.Deployment{}, services: map[string]corev1.Service{},
		configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	files, _ := filepath.Glob(filepath.Join(repoRoot(), "deploy", "k8s", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s document %d: %v", filepath.Base(file), i, err)
			}
			strict := func(into any) {
				if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
					t.Fatalf("%s document %d (%s): %v", filepath.Base(file), i, meta.Kind, err)
				}
			}
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				var d appsv1.Deployment
				strict(&d)
				m.deployments[d.Name] = d
			case "v1 Service":
				var s corev1.Service
				strict(&s)
				m.services[s.Name] = s
			case "policy/v1 PodDisruptionBudget":
				var p policyv1.PodDisruptionBudget
				strict(&p)
				m.pdbs = append(m.pdbs, p)
			case "autoscaling/v2 HorizontalPodAutoscaler":
				var h autoscalingv2.HorizontalPodAutoscaler
				strict(&h)
				m.hpas = append(m.hpas, h)
			case "v1 ConfigMap":
				var c corev1.ConfigMap
				strict(&c)
				m.configMaps[c.Name] = c
			case "v1 Secret":
				var s corev1.Secret
				strict(&s)
				m.secrets[s.Name] = s
			default:
				t.Fatalf("%s document %d: unexpected %s %s", filepath.Base(file), i, meta.APIVersion, meta.Kind)
			}
		}
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	bins := build(t)
	for _, name := range []string{"authsvc", "predictsvc"} {
		d, ok := m.deployments[name]
		if !ok {
			t.Fatalf("no %s Deployment", name)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("%s: want at least 2 replicas", name)
		}
		if _, ok := m.services[name]; !ok {
			t.Errorf("%s: no Service", name)
		}
		pod := d.Spec.Template.Spec
		if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pods must run as non-root", name)
		}
		c := pod.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil || c.LivenessProbe == nil {
			t.Errorf("%s: want a gRPC readiness probe and a liveness probe", name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: want CPU requests and memory limits", name)
		}
		covered := false
		for _, p := range m.pdbs {
			covered = covered || p.Spec.Selector.MatchLabels["app.kubernetes.io/name"] == name
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget", name)
		}
		// The environment the pod gets must be accepted by the binary.
		env := map[string]string{}
		for _, from := range c.EnvFrom {
			switch {
			case from.ConfigMapRef != nil:
				cm, ok := m.configMaps[from.ConfigMapRef.Name]
				if !ok {
					t.Fatalf("%s: ConfigMap %s is not defined", name, from.ConfigMapRef.Name)
				}
				for k, v := range cm.Data {
					if strings.HasPrefix(k, strings.ToUpper(name)+"_") {
						env[k] = v
					}
				}
			case from.SecretRef != nil:
				s, ok := m.secrets[from.SecretRef.Name]
				if !ok {
					t.Fatalf("%s: Secret %s is not defined", name, from.SecretRef.Name)
				}
				for k, v := range s.StringData {
					env[k] = v
				}
			}
		}
		checkConfig(t, bins[name], env)
	}
	if len(m.hpas) != 1 || m.hpas[0].Spec.ScaleTargetRef.Name != "predictsvc" || m.hpas[0].Spec.MinReplicas == nil || *m.hpas[0].Spec.MinReplicas < 2 {
		t.Errorf("want one HorizontalPodAutoscaler for predictsvc with at least 2 replicas, got %+v", m.hpas)
	}
	if _, ok := m.secrets["mlgate-database"]; !ok {
		t.Error("no Secret for the database URL (the key material)")
	}
}
