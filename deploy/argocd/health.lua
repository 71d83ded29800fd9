-- Argo CD health check for iam.ccloud.dev/Invitation (confluent-invitation-operator).
-- Argo CD runs this with gopher-lua (Lua 5.1): no goto, no integer division, no bit operators.
-- Source of truth for deploy/argocd/argocd-cm-patch.yaml, which must embed it byte for byte.
--
-- Healthy:     Ready=True for the current generation (the invitation was Sent, or Accepted).
-- Progressing: not reconciled yet, a spec change not observed yet, Ready=Unknown, the remote
--              invitation is still Pending/Staged, a listed role binding is not created yet
--              (RoleBindingPending), or the resource is being deleted.
-- Degraded:    Ready=False for the current generation (Expired, CredentialsInvalid,
--              ImmutableFieldChanged, RoleBindingRefused, ...), with the condition's reason and
--              message. A reason this script does not know is Degraded too: it needs a look.
local hs = {}

-- Reasons the operator may give a Ready=False condition while it is still working towards Ready
-- (nothing for a human to fix yet): reported as Progressing rather than Degraded.
local progressingReasons = {
  Pending = true,
  Staged = true,
  Reconciling = true,
  Progressing = true,
  -- The invitation stands and a listed role binding waits for the invitee's user id or for a
  -- transient failure to pass (retried with backoff). A refused binding (RoleBindingRefused)
  -- waits for a spec change, so it stays Degraded.
  RoleBindingPending = true,
}

-- Phases in which the remote invitation exists but is not sent yet.
local progressingPhases = {
  Pending = true,
  Staged = true,
}

local function readyCondition(status)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      return condition
    end
  end
  return nil
end

-- Joins reason and message for the Argo CD UI, tolerating either being absent.
local function describe(condition, fallback)
  local reason = condition.reason
  local message = condition.message
  if reason ~= nil and reason ~= "" and message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= nil and message ~= "" then
    return message
  end
  if reason ~= nil and reason ~= "" then
    return reason
  end
  return fallback
end

local function evaluate(obj)
  if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
    return "Progressing", "Deleting: the operator is cleaning up the remote invitation"
  end
  local status = obj.status
  local ready = readyCondition(status)
  if ready == nil then
    return "Progressing", "Waiting for the operator to reconcile the invitation"
  end
  -- A status written for an older spec says nothing about the current one (kstatus rule):
  -- compare both the top-level and the condition's observedGeneration when present.
  local generation = nil
  if obj.metadata ~= nil then
    generation = obj.metadata.generation
  end
  if generation ~= nil then
    if status.observedGeneration ~= nil and status.observedGeneration < generation then
      return "Progressing", "Waiting for the operator to observe generation " .. tostring(generation)
    end
    if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
      return "Progressing", "Waiting for the operator to observe generation " .. tostring(generation)
    end
  end
  local phase = status.phase
  if ready.status == "False" then
    if progressingReasons[ready.reason] then
      return "Progressing", describe(ready, "Invitation is not sent yet")
    end
    return "Degraded", describe(ready, "Invitation is not ready")
  end
  if ready.status ~= "True" then
    return "Progressing", describe(ready, "Invitation readiness is unknown")
  end
  if phase ~= nil and progressingPhases[phase] then
    return "Progressing", "Invitation is " .. phase
  end
  return "Healthy", describe(ready, "Invitation is " .. tostring(phase))
end

hs.status, hs.message = evaluate(obj)
return hs
