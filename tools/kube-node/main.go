// kube-node is the node half of the test cluster: one binary, built from the same k8s.io/kubernetes
// module and version as tools/kube-testserver, that runs the component its first argument names.
// One binary instead of four because the four share almost all of their code: one link, one
// download, one stamp.
//
// Usage:
//
//	kube-node kubelet|controller-manager|scheduler|proxy [FLAGS OF THAT COMPONENT...]
//	kube-node remove-pods --endpoint unix://PATH   (every pod sandbox of a CRI runtime: removepods.go)
//
// Each subcommand is exactly the upstream command (cmd/kubelet, cmd/kube-controller-manager,
// cmd/kube-scheduler, cmd/kube-proxy) with its own flags; scripts/kube-testcluster.sh starts them.
package main

import (
	"context"
	"fmt"
	"os"
	_ "time/tzdata" // as in cmd/kube-controller-manager: time zones for CronJobs

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // as in every cmd/: JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as in every cmd/: client metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // as in every cmd/: version metric
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = "usage: kube-node kubelet|controller-manager|scheduler|proxy [FLAGS...]\n       kube-node remove-pods --endpoint unix://PATH\n"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var cmd *cobra.Command
	switch os.Args[1] {
	case "kubelet":
		cmd = kubelet.NewKubeletCommand(context.Background())
	case "controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "scheduler":
		cmd = scheduler.NewSchedulerCommand()
	case "proxy":
		cmd = proxy.NewProxyCommand()
	case "remove-pods":
		os.Exit(removePods(os.Args[2:]))
	case "-h", "--help", "help":
		fmt.Print(usage)
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "kube-node: unknown component %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	// cobra reads os.Args[1:] by default; the component's flags start after its name.
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}
