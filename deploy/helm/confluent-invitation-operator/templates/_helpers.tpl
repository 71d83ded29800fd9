{{/* Chart name, truncated to 63 chars: label values and DNS names cannot be longer. */}}
{{- define "cio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name alone when it already contains the chart name, so the default
install (`helm install confluent-invitation-operator ...`) does not get a doubled name. */}}
{{- define "cio.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cio.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: immutable in a Deployment, so only name + instance, never the version. */}}
{{- define "cio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cio.labels" -}}
helm.sh/chart: {{ include "cio.chart" . }}
{{ include "cio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: confluent-invitation-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "cio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cio.leaseName" -}}
{{- default (include "cio.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "cio.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's permissions, shared by the ClusterRole (all namespaces) and the Role
(watchNamespace). Exactly what the controller calls; no wildcards.
*/}}
{{- define "cio.rules" -}}
# The controller's informer lists and watches Invitations, and the finalizer helper adds and
# removes its finalizer with a (JSON) patch of the main resource. create, update, delete: an
# InvitationGroup's member Invitations (created, put back when edited by hand, deleted when
# the member is removed); the operator writes no other Invitation's spec.
- apiGroups: [iam.ccloud.dev]
  resources: [invitations]
  verbs: [get, list, watch, patch, create, update, delete]
# Status is written with patches of the status subresource only (never the spec).
- apiGroups: [iam.ccloud.dev]
  resources: [invitations/status]
  verbs: [patch]
# Clusters with the OwnerReferencesPermissionEnforcement admission plugin (e.g. OpenShift) check
# update on this subresource before a controller may set finalizers.
- apiGroups: [iam.ccloud.dev]
  resources: [invitations/finalizers]
  verbs: [update]
# InvitationGroups are watched and their status written (never their spec); their member
# Invitations carry a controller reference blocking the group's deletion, which clusters with
# OwnerReferencesPermissionEnforcement allow only with update on the finalizers subresource.
- apiGroups: [iam.ccloud.dev]
  resources: [invitationgroups]
  verbs: [get, list, watch]
- apiGroups: [iam.ccloud.dev]
  resources: [invitationgroups/status]
  verbs: [patch]
- apiGroups: [iam.ccloud.dev]
  resources: [invitationgroups/finalizers]
  verbs: [update]
# spec.credentialsSecretRef is read with a single GET when needed; no list/watch, so Secrets are
# never cached in the operator's memory. The name is chosen by each Invitation, so resourceNames
# cannot narrow this. patch: the finalizer iam.ccloud.dev/credentials-in-use, kept on a Secret
# while an Invitation uses it, so a namespace deletion removes it after the Invitations' cleanup.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, patch]
# kube-runtime's Recorder writes events.k8s.io/v1 Events (create, then patch to bump a series).
# The core ("") Event API is not granted: the Recorder never uses it, and events.k8s.io/v1 exists
# on every supported cluster (GA since 1.19; the chart requires 1.20+).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.sts.allowServiceAccountTokens }}
# Keyless credentials Secrets (identityPoolId + serviceAccountName): a token of the named
# ServiceAccount of the Secret's own namespace is minted for each STS exchange. RBAC cannot
# narrow the audience or the account: SECURITY.md weighs this.
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
{{- end }}
{{- end -}}
