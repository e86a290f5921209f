# The same meaning as three Kyverno policies of the shared corpus, for the regorus comparison:
# best-practices/require-labels, best-practices/restrict-image-registries and
# pod-security/baseline/disallow-privileged-containers, including Kyverno's autogen reach
# (the Pod template of Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs and the job
# template of CronJobs). `deny` holds one message per violated rule.
package palisade.bench

import rego.v1

controllers := {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "ReplicationController"}

object := input.request.object

pod := object if object.kind == "Pod"

pod := object.spec.template if object.kind in controllers

pod := object.spec.jobTemplate.spec.template if object.kind == "CronJob"

all_containers contains c if some c in pod.spec.containers

all_containers contains c if some c in pod.spec.initContainers

all_containers contains c if some c in pod.spec.ephemeralContainers

# require-labels: `app.kubernetes.io/name: "?*"`.
deny contains "The label `app.kubernetes.io/name` is required." if {
	pod
	not has_name_label
}

has_name_label if count(pod.metadata.labels["app.kubernetes.io/name"]) > 0

# restrict-image-registries: `image: "eu.foo.io/* | bar.io/*"` for every container.
deny contains "Unknown image registry." if {
	some c in all_containers
	not allowed_registry(c.image)
}

allowed_registry(image) if startswith(image, "eu.foo.io/")

allowed_registry(image) if startswith(image, "bar.io/")

# disallow-privileged-containers: `=(securityContext): =(privileged): "false"`.
deny contains "Privileged mode is disallowed." if {
	some c in all_containers
	c.securityContext.privileged == true
}
