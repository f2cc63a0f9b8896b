{{/* Names, labels and the values every template shares. */}}

{{- define "mbo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mbo.fullname" -}}
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

{{/* A name derived from the full name: (list $ "suffix"). */}}
{{- define "mbo.suffixed" -}}
{{- $full := include "mbo.fullname" (index . 0) -}}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len (index . 1)))) | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "mbo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mbo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: milvus-backup-operator
{{- end -}}

{{- define "mbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mbo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mbo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "mbo.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end -}}
{{- end -}}

{{/* The namespaces whose MilvusBackups and MilvusRestores run Jobs, as a JSON list. */}}
{{- define "mbo.jobNamespaces" -}}
{{- if include "mbo.clusterWide" . -}}
{{- prepend .Values.jobNamespaces .Release.Namespace | uniq | toJson -}}
{{- else -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- end -}}
{{- end -}}

{{/*
The REST server's template: the MilvusBackup spec (milvus, storage, backupStorage) of every
backup and restore made through the API. restServer.template, or built from the values
milvus, storage and backupStorage.
*/}}
{{- define "mbo.restTemplate" -}}
{{- if .Values.restServer.template -}}
{{- toYaml .Values.restServer.template -}}
{{- else -}}
{{- $milvus := dict "address" .Values.milvus.address "port" (int .Values.milvus.port) "tls" .Values.milvus.tls -}}
{{- with .Values.milvus.existingSecret -}}{{- $_ := set $milvus "credentialsSecret" . -}}{{- end -}}
{{- $storage := dict "endpoint" .Values.storage.endpoint "bucket" .Values.storage.bucket "rootPath" .Values.storage.rootPath "useSSL" .Values.storage.useSSL -}}
{{- with .Values.storage.region -}}{{- $_ := set $storage "region" . -}}{{- end -}}
{{- with .Values.storage.existingSecret -}}
{{- $_ := set $storage "credentialsSecret" (dict "name" . "accessKeyKey" $.Values.storage.accessKeyKey "secretKeyKey" $.Values.storage.secretKeyKey) -}}
{{- end -}}
{{- toYaml (dict "milvus" $milvus "storage" $storage "backupStorage" (dict "rootPath" .Values.backupStorage.rootPath)) -}}
{{- end -}}
{{- end -}}

{{- define "mbo.restNamespace" -}}
{{- default .Release.Namespace .Values.restServer.namespace -}}
{{- end -}}

{{/* The resources no Role can grant: they go into a ClusterRole in every mode. */}}
{{- define "mbo.clusterScopedResources" -}}
["customresourcedefinitions", "namespaces"]
{{- end -}}

{{/* Operator rules from files/operator-rules.yaml: "all", "namespaced" or "cluster" ones. */}}
{{- define "mbo.operatorRules" -}}
{{- $root := index . 0 -}}
{{- $which := index . 1 -}}
{{- $clusterScoped := include "mbo.clusterScopedResources" $root | fromJsonArray -}}
{{- $rules := list -}}
{{- range $rule := $root.Files.Get "files/operator-rules.yaml" | fromYamlArray -}}
{{- $isCluster := false -}}
{{- range $resource := $rule.resources -}}
{{- if has $resource $clusterScoped -}}{{- $isCluster = true -}}{{- end -}}
{{- end -}}
{{- if or (eq $which "all") (and (eq $which "cluster") $isCluster) (and (eq $which "namespaced") (not $isCluster)) -}}
{{- $rules = append $rules $rule -}}
{{- end -}}
{{- end -}}
{{- toYaml $rules -}}
{{- end -}}

{{- define "mbo.jobRules" -}}
{{- .Files.Get "files/job-rules.yaml" | fromYamlArray | toYaml -}}
{{- end -}}

{{- define "mbo.webhookServiceName" -}}
{{- include "mbo.suffixed" (list . "webhook") -}}
{{- end -}}

{{- define "mbo.webhookSecretName" -}}
{{- default (include "mbo.suffixed" (list . "webhook-tls")) .Values.webhook.tls.existingSecret -}}
{{- end -}}

{{/*
The webhook's CA, certificate and key (base64), made once per render and shared by every
template (the Secret, the ValidatingWebhookConfiguration, the Deployment's checksum). An
installed release keeps its own: they are looked up in the cluster and reused.
*/}}
{{- define "mbo.webhookTLS" -}}
{{- if not (hasKey .Values "__webhookTLS") -}}
{{- $tls := dict -}}
{{- if .Values.webhook.tls.existingSecret -}}
{{- $_ := set $tls "ca" .Values.webhook.tls.caBundle -}}
{{- else -}}
{{- $secretName := include "mbo.webhookSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") -}}
{{- $_ := set $tls "ca" (index $existing.data "ca.crt") -}}
{{- $_ := set $tls "crt" (index $existing.data "tls.crt") -}}
{{- $_ := set $tls "key" (index $existing.data "tls.key") -}}
{{- else -}}
{{- $svc := include "mbo.webhookServiceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $days := int .Values.webhook.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names $days $ca -}}
{{- $_ := set $tls "ca" ($ca.Cert | b64enc) -}}
{{- $_ := set $tls "crt" ($cert.Cert | b64enc) -}}
{{- $_ := set $tls "key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__webhookTLS" $tls -}}
{{- end -}}
{{- toJson (get .Values "__webhookTLS") -}}
{{- end -}}

{{/* The REST server's bearer token (base64): generated once, kept across upgrades. */}}
{{- define "mbo.restToken" -}}
{{- if not (hasKey .Values "__restToken") -}}
{{- $name := include "mbo.suffixed" (list . "rest-token") -}}
{{- $existing := lookup "v1" "Secret" (include "mbo.restNamespace" .) $name -}}
{{- $token := "" -}}
{{- if and $existing (index ($existing.data | default dict) "token") -}}
{{- $token = index $existing.data "token" -}}
{{- else -}}
{{- $token = randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- $_ := set .Values "__restToken" $token -}}
{{- end -}}
{{- get .Values "__restToken" -}}
{{- end -}}

{{/* Refuse value combinations that cannot work. */}}
{{- define "mbo.validate" -}}
{{- if and .Values.restServer.enabled (not (include "mbo.clusterWide" .)) -}}
{{- if not (has (include "mbo.restNamespace" .) .Values.watchNamespaces) -}}
{{- fail (printf "restServer.namespace %q must be one of watchNamespaces %v: the operator must watch the resources the REST server creates" (include "mbo.restNamespace" .) .Values.watchNamespaces) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.webhook.enabled .Values.webhook.tls.existingSecret (not .Values.webhook.tls.caBundle) (not (hasKey .Values.webhook.annotations "cert-manager.io/inject-ca-from")) -}}
{{- fail "webhook.tls.existingSecret needs webhook.tls.caBundle (or a cert-manager.io/inject-ca-from annotation in webhook.annotations)" -}}
{{- end -}}
{{- if and (not (include "mbo.clusterWide" .)) .Values.jobNamespaces -}}
{{- fail "jobNamespaces is for cluster-wide mode: in namespaced mode the Jobs run in watchNamespaces" -}}
{{- end -}}
{{- end -}}

{{/*
The Jobs' Pod settings (--job-defaults): jobTemplate, its imagePullSecrets defaulting to the
operator's own.
*/}}
{{- define "mbo.jobDefaults" -}}
{{- $template := deepCopy .Values.jobTemplate -}}
{{- if not $template.imagePullSecrets -}}
{{- $_ := set $template "imagePullSecrets" .Values.imagePullSecrets -}}
{{- end -}}
{{- toYaml $template -}}
{{- end -}}
