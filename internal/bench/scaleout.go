package bench

import (
	"context"
	"fmt"
	"strings"
)

const aboutScaleOut = "The price of replication: the same fleet (one producer, scheduler and worker) and the same closed-loop load on one NATS server with R1 streams and KV buckets, and on a three-node NATS cluster (loopback, one machine) with R3 and every node's URL given to every process. Both fleets run for the whole scenario; phases alternate one node, three nodes, per model. Each stored message (the submit, the dispatch, their acks, the KV heartbeats and lease) waits on the cluster for a RAFT quorum: the stream leader appends, sends the entry to both followers and answers once one of them has it, so every JetStream write costs a round trip between servers and twice more server CPU (two followers apply it) on top of the leader's. The third fleet keeps one NATS node and puts Redis on a three-primary Redis Cluster with a replica each (loopback, one machine): every job's keys fall in one of 16 shards spread over the primaries, a client pipeline is split by node, and every write is also applied by a replica. The CPU per job by process says where the difference goes."

// backShape is one shape of the backing services that scale-out
// compares.
type backShape struct {
	name         string
	natsNodes    int
	redisCluster bool
}

// The shapes, in the order the ratios index them: the baseline (one of
// each), NATS replicated, Redis sharded.
var scaleOutShapes = []backShape{{"nats1_r1", 1, false}, {"nats3_r3", 3, false}, {"redis_cluster", 1, true}}

func runScaleOut(ctx context.Context, e *env, r *Result) error {
	s := e.size
	fleets := make([]*fleet, len(scaleOutShapes))
	for i, sh := range scaleOutShapes {
		f, err := e.startFleet(fleetOpts{name: "scaleout-" + sh.name, models: s.ScaleOutModels, natsNodes: sh.natsNodes, redisCluster: sh.redisCluster})
		if err != nil {
			return fmt.Errorf("%s: %w", sh.name, err)
		}
		defer f.stop()
		fleets[i] = f
	}
	for _, model := range s.ScaleOutModels {
		in, err := e.inputsFor(model)
		if err != nil {
			return err
		}
		spec := loadSpec{Model: model, Inputs: in.paths, ContentType: in.contentType, Concurrency: s.Concurrency, Warmup: s.Warmup, Window: s.Window}
		rates := make([][]float64, len(fleets))
		p99 := make([][]float64, len(fleets))
		cpu := make([][]*cpuUse, len(fleets))
		njobs := make([][]float64, len(fleets))
		for round := range s.Rounds {
			for i, f := range fleets {
				res, use, err := f.load(ctx, spec)
				if err != nil {
					return fmt.Errorf("%s %s: %w", model, scaleOutShapes[i].name, err)
				}
				rates[i], p99[i] = append(rates[i], res.Rate()), append(p99[i], res.P99)
				cpu[i], njobs[i] = append(cpu[i], use), append(njobs[i], float64(res.Completed))
				e.logf("scale-out %s round %d %s: %.1f jobs/s, p99 %.0f ms", model, round+1, scaleOutShapes[i].name, res.Rate(), res.P99)
			}
		}
		one, three, cluster := 0, 1, 2
		r.ratio("r3_over_r1_"+model, ratioOfRounds(rates[three], rates[one]), model+": completed jobs/s on three NATS nodes with R3 over one node with R1")
		r.ratio("r3_over_r1_p99_"+model, ratioOfRounds(p99[three], p99[one]), model+": p99 latency on three nodes R3 over one node R1 (above 1: replication is slower)")
		r.ratio("rediscluster_over_single_"+model, ratioOfRounds(rates[cluster], rates[one]), model+": completed jobs/s on a three-primary Redis Cluster over one Redis")
		r.ratio("rediscluster_over_single_p99_"+model, ratioOfRounds(p99[cluster], p99[one]), model+": p99 latency on a Redis Cluster over one Redis")
		nats := make([]float64, len(fleets))
		rdb := make([]float64, len(fleets))
		for i, sh := range scaleOutShapes {
			r.figure(sh.name+"_jobs_per_s_"+model, mean(rates[i]), "completed jobs/s")
			r.figure(sh.name+"_p99_ms_"+model, mean(p99[i]), "ms, submit to result")
			per := cpuPerJob(cpu[i], njobs[i])
			for k, v := range per {
				if strings.HasPrefix(k, "nats") {
					nats[i] += v
				}
				if strings.HasPrefix(k, "redis") {
					rdb[i] += v
				}
			}
			r.figure(sh.name+"_nats_cpu_us_per_job_"+model, nats[i], "CPU µs per job of the NATS server(s), all nodes summed")
			r.figure(sh.name+"_redis_cpu_us_per_job_"+model, rdb[i], "CPU µs per job of the Redis server(s), all nodes summed")
			r.addSection(fmt.Sprintf("%s, %s: CPU per job by process", model, sh.name), cpuTable(cpu[i], njobs[i]))
		}
		r.ratio("r3_over_r1_nats_cpu_"+model, div(nats[three], nats[one]), model+": NATS CPU per job, all three nodes summed, over one node's")
		r.ratio("rediscluster_over_single_redis_cpu_"+model, div(rdb[cluster], rdb[one]), model+": Redis CPU per job, all six Cluster nodes summed, over one Redis's")
		r.addSection(model+": each round", roundsTable([]string{"baseline jobs/s", "NATS 3 nodes R3 jobs/s", "Redis Cluster jobs/s", "baseline p99 ms", "NATS R3 p99 ms", "Redis Cluster p99 ms"}, rates[one], rates[three], rates[cluster], p99[one], p99[three], p99[cluster]))
	}
	return nil
}
