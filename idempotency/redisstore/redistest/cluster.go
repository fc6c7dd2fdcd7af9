package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of primaries without replicas, each a Server.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n servers in cluster mode on free loopback ports,
// splits the hash slots evenly between them, joins them and waits until
// every node reports the cluster healthy.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	buses := make([]int, n)
	for i := range n {
		bus, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		buses[i] = bus
		c.Nodes = append(c.Nodes, Start(t, Config{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", "5000",
		}}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for i, node := range c.Nodes {
		cl := node.Client(0)
		args := []any{"CLUSTER", "ADDSLOTS"}
		for slot := i * clusterSlots / n; slot < (i+1)*clusterSlots/n; slot++ {
			args = append(args, slot)
		}
		if err := cl.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTS on node %d: %v", i, err)
		}
		if i > 0 {
			if err := c.Nodes[0].Client(0).Do(ctx, "CLUSTER", "MEET", "127.0.0.1", node.Port(), buses[i]).Err(); err != nil {
				t.Fatalf("redistest: CLUSTER MEET node %d: %v", i, err)
			}
		}
	}
	for i, node := range c.Nodes {
		cl := node.Client(0)
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: cluster node %d not ready: %v\n%s", i, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// Client returns a cluster client of the nodes (contexts bound its socket
// I/O), closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { cl.Close() })
	return cl
}
