{{/* The chart name, overridable. */}}
{{- define "aftershock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource name: <release>-aftershock, or just the release name when it
already says aftershock. */}}
{{- define "aftershock.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "aftershock.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aftershock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator's pods: stable across upgrades. */}}
{{- define "aftershock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aftershock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard labels of every object of the release. */}}
{{- define "aftershock.labels" -}}
helm.sh/chart: {{ include "aftershock.chart" . }}
{{ include "aftershock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aftershock
{{- end -}}

{{- define "aftershock.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aftershock.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aftershock.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "aftershock.webhookService" -}}
{{- printf "%s-webhook" (include "aftershock.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aftershock.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "aftershock.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Namespaced resources the operator works with, as RBAC rules. Used in the ClusterRole
(all namespaces) or in a Role per watched namespace. */}}
{{- define "aftershock.namespacedRules" -}}
# pod faults: find targets, delete them (UID precondition), label them for NetworkPolicies
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete, patch]
# Events about experiments and runs (ours use events.k8s.io, kopf's use core/v1)
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
# targets and their steady state; the shared cache lists and watches these, pods, PDBs and runs
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get, list, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch]
# networkPartition: the isolating NetworkPolicy, removed on revert
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, delete]
# our objects: kopf patches metadata (finalizer, progress annotations); runs are created for
# schedule slots and removed by the history limits; status is ours
- apiGroups: [aftershock.dev]
  resources: [chaosexperiments]
  verbs: [get, list, watch, patch]
- apiGroups: [aftershock.dev]
  resources: [chaosruns]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [aftershock.dev]
  resources: [chaosexperiments/status, chaosruns/status]
  verbs: [get, patch]
{{- if .Values.litmus.enabled }}
# litmus faults: a run's ChaosEngine (created, merge-patched to stop, deleted; Litmus's finalizer
# removed only when Litmus is gone), its ChaosResult, and the prerequisites checked first
- apiGroups: [litmuschaos.io]
  resources: [chaosengines]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [litmuschaos.io]
  resources: [chaosresults]
  verbs: [get, delete]
- apiGroups: [litmuschaos.io]
  resources: [chaosexperiments]
  verbs: [get]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get]
{{- if .Values.litmus.provisionRBAC }}
# provisionServiceAccount: the operator creates a ServiceAccount, Role and RoleBinding per Litmus
# pod experiment. RBAC lets it grant only what it holds itself, so it holds what those Roles grant
# (the union of core/litmus.py rules_for) - including pods/exec. Off by default for that reason.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [patch]  # a provisioned Role an earlier version made gets today's rules
- apiGroups: [""]
  resources: [pods]
  verbs: [create, delete, get, list, patch, update, deletecollection]
- apiGroups: [""]
  resources: [events]
  verbs: [create, get, list, patch, update]
- apiGroups: [""]
  resources: [configmaps, replicationcontrollers]
  verbs: [get, list]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [get, list, create]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, list, get, delete, deletecollection]
- apiGroups: [litmuschaos.io]
  resources: [chaosengines, chaosexperiments, chaosresults]
  verbs: [create, list, get, patch, update, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets, replicasets, daemonsets]
  verbs: [get, list]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [create, delete, list, get]
{{- end }}
{{- end }}
{{- end -}}

{{/* What is cluster-scoped, needed in both modes. */}}
{{- define "aftershock.clusterRules" -}}
- apiGroups: [aftershock.dev]
  resources: [chaospolicies]
  verbs: [get, list, watch]
# the default policy: replaced when its values change, deleted when turned off; creating cannot
# be limited to one name in RBAC, so it is granted only while the chart configures one
- apiGroups: [aftershock.dev]
  resources: [chaospolicies]
  resourceNames: [{{ include "aftershock.defaultPolicyName" . }}]
  verbs: [update, delete]
{{- if .Values.defaultPolicy.enabled }}
- apiGroups: [aftershock.dev]
  resources: [chaospolicies]
  verbs: [create]
{{- end }}
# target namespaces must opt in (labels); kopf lists namespaces to resolve --namespace
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# cross-namespace and node faults: could the requester do this damage directly?
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
# kopf follows the CRDs of the kinds it serves
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- if .Values.nodeFaults.enabled }}
# node faults: cordon, taint and mark nodes (merge patch), find marked ones for the sweeper; a
# node's pods may be in any namespace, so they are listed, evicted and sized cluster-wide, and
# the workloads that lose pods are followed until they recovered (a Deployment through its
# ReplicaSets, hence their list)
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
- apiGroups: [apps]
  resources: [replicasets, deployments, statefulsets, daemonsets]
  verbs: [get]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list]
{{- end }}
{{- end -}}

{{/* The default ChaosPolicy's name (cluster-scoped, so it carries the release's full name). */}}
{{- define "aftershock.defaultPolicyName" -}}
{{- printf "%s-default" (include "aftershock.fullname" .) | trunc 253 -}}
{{- end -}}

{{/* The default ChaosPolicy's spec, from defaultPolicy values. */}}
{{- define "aftershock.defaultPolicySpec" -}}
{{- $p := .Values.defaultPolicy -}}
suspend: false
namespaces:
  selector:
    matchLabels:
      {{ $p.namespaceLabel.key }}: {{ $p.namespaceLabel.value | quote }}
  deny: [kube-system, kube-public, kube-node-lease, {{ .Release.Namespace }}]
crossNamespace: false
allowedFaults: {{ toJson $p.allowedFaults }}
blastRadius:
  maxPodsPercent: {{ $p.maxPodsPercent }}
  maxPods: {{ $p.maxPods }}
  maxNodes: 1
respectDisruptionBudgets: {{ $p.respectDisruptionBudgets }}
concurrency:
  maxActiveRuns: {{ $p.maxActiveRuns }}
  maxActiveRunsPerNamespace: {{ $p.maxActiveRunsPerNamespace }}
{{- with $p.maxDuration }}
maxDuration: {{ . | quote }}
{{- end }}
{{- with $p.endpointsAllow }}
endpoints:
  allow: {{ toJson . }}
{{- end }}
{{- end -}}

{{/* The operator's own Deployment and pods: the release hook stops it before letting go. */}}
{{- define "aftershock.selfRules" -}}
- apiGroups: [apps]
  resources: [deployments]
  resourceNames: [{{ include "aftershock.fullname" . }}]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# the operator's Leases (one per instance: the liveness of the runs it claims), renewed by their
# holder and read by every instance through the shared cache's watch - in this namespace only
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch, delete]
# the key of the review stamps (core/review.py): made by the first replica, read by every one;
# no other Secret is readable
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [aftershock-review-key]
  verbs: [get]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
{{- end -}}
