// Package conformance runs containerd 1.6's own conformance suites (content/testsuite's ContentSuite
// and ContentCrossNSSharedSuite, snapshots/testsuite's SnapshotterSuite) over gRPC against a running
// daemon: containerd itself as the baseline, or `hoist serve`. test/integration/conformance-go.test.ts
// builds this package once (`go test -c`) and runs the binary against each target. The suites write the
// same blobs every run (their content is seeded by order), and a store that already has a blob in another
// namespace shares it, which the suites do not expect: run against a fresh daemon each time.
//
// Environment:
//
//	HOIST_CONFORMANCE_ADDRESS      the daemon's unix socket (the tests skip without it)
//	HOIST_CONFORMANCE_SNAPSHOTTERS comma-separated snapshotter names (default "overlayfs")
//	HOIST_CONFORMANCE_DIAL         "containerd" (default: unix://PATH plus a dialer, as containerd's
//	                               client dials) or "path" (the bare path as the target, so the
//	                               HTTP/2 :authority is the path)
package conformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	leasesapi "github.com/containerd/containerd/api/services/leases/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/content"
	contentproxy "github.com/containerd/containerd/content/proxy"
	contentsuite "github.com/containerd/containerd/content/testsuite"
	"github.com/containerd/containerd/leases"
	leaseproxy "github.com/containerd/containerd/leases/proxy"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	snapshotproxy "github.com/containerd/containerd/snapshots/proxy"
	snapshotsuite "github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

// run tells apart the namespaces of one run of the binary from any left by an earlier run against
// the same daemon.
var run = fmt.Sprintf("conf%d", time.Now().UnixNano()%1_000_000_000)

var nsCount uint64

// freshNamespace names a namespace no other test of this run uses.
func freshNamespace(prefix string) string {
	n := atomic.AddUint64(&nsCount, 1)
	return fmt.Sprintf("%s-%s-%d", run, prefix, n)
}

func dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	address := os.Getenv("HOIST_CONFORMANCE_ADDRESS")
	if address == "" {
		t.Skip("HOIST_CONFORMANCE_ADDRESS is not set")
	}
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", address)
	}
	target := "unix://" + address
	if os.Getenv("HOIST_CONFORMANCE_DIAL") == "path" {
		target = address
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target,
		grpc.WithInsecure(),
		grpc.WithContextDialer(dialer),
		grpc.WithBlock(),
	)
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestContent(t *testing.T) {
	conn := dial(t)
	store := contentproxy.NewContentStore(contentapi.NewContentClient(conn))

	leaseManager := leaseproxy.NewLeaseManager(leasesapi.NewLeasesClient(conn))

	// Every test, and every context a cross-namespace test derives, gets a namespace of its own, as
	// containerd's metadata store runs the suite, and a lease, as containerd's client tests give it: a
	// blob one step commits is otherwise fair game for the daemon's garbage collector (which the
	// deletions of other tests schedule) before the next step expects it to exist.
	storeFn := func(ctx context.Context, _ string) (context.Context, content.Store, func() error, error) {
		name := contentsuite.Name(ctx)
		wrap := func(ctx context.Context) (context.Context, func(context.Context) error, error) {
			ctx = namespaces.WithNamespace(ctx, freshNamespace(name))
			l, err := leaseManager.Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
			if err != nil {
				return nil, nil, err
			}
			release := func(ctx context.Context) error { return leaseManager.Delete(ctx, l) }
			return leases.WithLease(ctx, l.ID), release, nil
		}
		ctx = contentsuite.SetContextWrapper(ctx, wrap)
		return ctx, store, func() error { return nil }, nil
	}
	contentsuite.ContentSuite(t, "content", storeFn)
	contentsuite.ContentCrossNSSharedSuite(t, "content", storeFn)
}

func TestSnapshots(t *testing.T) {
	conn := dial(t)
	names := os.Getenv("HOIST_CONFORMANCE_SNAPSHOTTERS")
	if names == "" {
		names = "overlayfs"
	}
	for _, name := range strings.Split(names, ",") {
		name := name
		t.Run(name, func(t *testing.T) {
			client := snapshotsapi.NewSnapshotsClient(conn)
			snapshotsuite.SnapshotterSuite(t, name, func(ctx context.Context, _ string) (snapshots.Snapshotter, func() error, error) {
				sn := &namespaced{Snapshotter: snapshotproxy.NewSnapshotter(client, name), ns: freshNamespace(name)}
				return sn, sn.removeAll, nil
			})
		})
	}
}

// namespaced puts every call of one test in that test's own namespace (the suite sets one namespace,
// "testsuite", for all its tests, which share one snapshotter here).
type namespaced struct {
	snapshots.Snapshotter
	ns string
}

func (s *namespaced) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.ns)
}

func (s *namespaced) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return s.Snapshotter.Stat(s.ctx(ctx), key)
}

func (s *namespaced) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return s.Snapshotter.Update(s.ctx(ctx), info, fieldpaths...)
}

func (s *namespaced) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return s.Snapshotter.Usage(s.ctx(ctx), key)
}

func (s *namespaced) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return s.Snapshotter.Mounts(s.ctx(ctx), key)
}

func (s *namespaced) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.Snapshotter.Prepare(s.ctx(ctx), key, parent, opts...)
}

func (s *namespaced) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.Snapshotter.View(s.ctx(ctx), key, parent, opts...)
}

func (s *namespaced) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return s.Snapshotter.Commit(s.ctx(ctx), name, key, opts...)
}

func (s *namespaced) Remove(ctx context.Context, key string) error {
	return s.Snapshotter.Remove(s.ctx(ctx), key)
}

func (s *namespaced) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return s.Snapshotter.Walk(s.ctx(ctx), fn, filters...)
}

// removeAll removes what a test left in its namespace, children before their parents, so the
// daemon's disk does not fill up over a run.
func (s *namespaced) removeAll() error {
	ctx, cancel := context.WithTimeout(s.ctx(context.Background()), time.Minute)
	defer cancel()
	var infos []snapshots.Info
	if err := s.Snapshotter.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		infos = append(infos, info)
		return nil
	}); err != nil {
		return err
	}
	depth := map[string]int{}
	parent := map[string]string{}
	for _, info := range infos {
		parent[info.Name] = info.Parent
	}
	var depthOf func(string) int
	depthOf = func(name string) int {
		if d, ok := depth[name]; ok {
			return d
		}
		d := 0
		if p := parent[name]; p != "" {
			d = depthOf(p) + 1
		}
		depth[name] = d
		return d
	}
	sort.Slice(infos, func(i, j int) bool { return depthOf(infos[i].Name) > depthOf(infos[j].Name) })
	for _, info := range infos {
		if err := s.Snapshotter.Remove(ctx, info.Name); err != nil {
			return fmt.Errorf("remove %s: %w", info.Name, err)
		}
	}
	return nil
}
