package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// removePods stops and removes every pod sandbox of a CRI runtime, the way the kubelet does when
// it deletes a pod: StopPodSandbox runs the CNI DEL (veth, address, netns go) and stops its
// containers, RemovePodSandbox deletes them and unmounts what the runtime mounted for them.
// scripts/kube-testcluster.sh stop runs it after the kubelet has stopped, so nothing is left of a
// pod when containerd stops. Prints one line per sandbox; exit 1 if any could not be removed.
func removePods(args []string) int {
	fs := flag.NewFlagSet("remove-pods", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "CRI endpoint, unix://PATH")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	_ = fs.Parse(args)
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "usage: kube-node remove-pods --endpoint unix://PATH [--timeout 60s]")
		return 2
	}
	rt, err := remote.NewRemoteRuntimeService(*endpoint, 10*time.Second, noop.NewTracerProvider(), nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-node remove-pods: connecting to %s: %v\n", *endpoint, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	pods, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-node remove-pods: listing pod sandboxes at %s: %v\n", *endpoint, err)
		return 1
	}
	failed := 0
	for _, p := range pods {
		name := podName(p)
		if err := rt.StopPodSandbox(ctx, p.Id); err != nil {
			fmt.Fprintf(os.Stderr, "kube-node remove-pods: stopping %s (%s): %v\n", name, p.Id, err)
			failed++
			continue
		}
		if err := rt.RemovePodSandbox(ctx, p.Id); err != nil {
			fmt.Fprintf(os.Stderr, "kube-node remove-pods: removing %s (%s): %v\n", name, p.Id, err)
			failed++
			continue
		}
		fmt.Printf("removed pod %s\n", name)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func podName(p *runtimeapi.PodSandbox) string {
	if p.Metadata == nil {
		return p.Id
	}
	return p.Metadata.Namespace + "/" + p.Metadata.Name
}
