-- Table test of deploy/argocd/health.lua, the Argo CD health check for iam.ccloud.dev/Invitation.
-- usage: lua5.4 tests/manifests/argocd_health_test.lua [path/to/health.lua]   (lua5.1 works too)
-- Written in Lua 5.1 syntax, like the script under test: Argo CD runs gopher-lua (Lua 5.1).
-- Runs every case, then exits 1 if any of them mismatched, so CI fails.

local function dirname(path)
  return (path:gsub("[^/]*$", ""))
end

local script = arg[1] or (dirname(arg[0]) .. "../../deploy/argocd/health.lua")

-- Argo CD evaluates the script with the resource as the global `obj`; do the same, loading the
-- chunk afresh for every case so no state leaks between cases.
local function health(resource)
  local chunk, err = loadfile(script)
  if chunk == nil then
    error("cannot load " .. script .. ": " .. tostring(err))
  end
  obj = resource
  local result = chunk()
  obj = nil
  return result
end

local function invitation(generation, status, extraMeta)
  local metadata = { name = "jane", namespace = "team-a", generation = generation }
  if extraMeta ~= nil then
    for k, v in pairs(extraMeta) do
      metadata[k] = v
    end
  end
  return {
    apiVersion = "iam.ccloud.dev/v1alpha1",
    kind = "Invitation",
    metadata = metadata,
    spec = { email = "jane@example.com" },
    status = status,
  }
end

local function ready(status, reason, message, observedGeneration)
  return {
    type = "Ready",
    status = status,
    reason = reason,
    message = message,
    observedGeneration = observedGeneration,
    lastTransitionTime = "2024-05-01T10:00:00Z",
  }
end

local cases = {
  {
    name = "new resource without status",
    obj = invitation(1, nil),
    status = "Progressing",
    message = "Waiting for the operator",
  },
  {
    name = "status without conditions",
    obj = invitation(1, { phase = "Pending" }),
    status = "Progressing",
    message = "Waiting for the operator",
  },
  {
    name = "conditions without Ready",
    obj = invitation(1, { conditions = { { type = "Other", status = "True" } } }),
    status = "Progressing",
    message = "Waiting for the operator",
  },
  {
    name = "sent and current",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      conditions = { ready("True", "Sent", "invitation i-abc12 sent to jane@example.com", 2) },
    }),
    status = "Healthy",
    message = "Sent: invitation i-abc12 sent to jane@example.com",
  },
  {
    name = "accepted and current, Ready not the first condition",
    obj = invitation(3, {
      phase = "Accepted", observedGeneration = 3,
      conditions = {
        { type = "Synced", status = "True" },
        ready("True", "Accepted", "jane@example.com joined as u-xyz98", 3),
      },
    }),
    status = "Healthy",
    message = "Accepted: jane@example.com joined as u-xyz98",
  },
  {
    name = "Ready True without any observedGeneration (tolerated)",
    obj = invitation(1, { phase = "Sent", conditions = { ready("True", "Sent", nil, nil) } }),
    status = "Healthy",
    message = "Sent",
  },
  {
    name = "status.observedGeneration behind metadata.generation",
    obj = invitation(3, {
      phase = "Sent", observedGeneration = 2,
      conditions = { ready("True", "Sent", "sent", 2) },
    }),
    status = "Progressing",
    message = "generation 3",
  },
  {
    name = "Ready condition's observedGeneration behind",
    obj = invitation(3, {
      phase = "Sent", observedGeneration = 3,
      conditions = { ready("True", "Sent", "sent", 2) },
    }),
    status = "Progressing",
    message = "generation 3",
  },
  {
    name = "stale Ready=False is not Degraded while the new generation is pending",
    obj = invitation(4, {
      phase = "Sent", observedGeneration = 3,
      conditions = { ready("False", "ImmutableFieldChanged", "email is immutable", 3) },
    }),
    status = "Progressing",
    message = "generation 4",
  },
  {
    name = "phase Pending with Ready Unknown",
    obj = invitation(1, {
      phase = "Pending", observedGeneration = 1,
      conditions = { ready("Unknown", "Pending", "creating the invitation", 1) },
    }),
    status = "Progressing",
    message = "creating the invitation",
  },
  {
    name = "phase Pending with Ready False, reason Pending",
    obj = invitation(1, {
      phase = "Pending", observedGeneration = 1,
      conditions = { ready("False", "Pending", "waiting for Confluent Cloud", 1) },
    }),
    status = "Progressing",
    message = "Pending: waiting for Confluent Cloud",
  },
  {
    name = "phase Staged with Ready True",
    obj = invitation(1, {
      phase = "Staged", observedGeneration = 1,
      conditions = { ready("True", "Staged", "staged", 1) },
    }),
    status = "Progressing",
    message = "Invitation is Staged",
  },
  {
    name = "phase Staged with Ready False, reason Staged",
    obj = invitation(1, {
      phase = "Staged", observedGeneration = 1,
      conditions = { ready("False", "Staged", nil, 1) },
    }),
    status = "Progressing",
    message = "Staged",
  },
  {
    name = "expired",
    obj = invitation(1, {
      phase = "Expired", observedGeneration = 1,
      conditions = { ready("False", "Expired", "invitation expired on 2024-06-01; set reinviteOnExpiry to re-send", 1) },
    }),
    status = "Degraded",
    message = "Expired: invitation expired on 2024-06-01; set reinviteOnExpiry to re-send",
  },
  {
    name = "bad credentials before anything was created (phase Pending) is still Degraded",
    obj = invitation(1, {
      phase = "Pending", observedGeneration = 1,
      conditions = { ready("False", "CredentialsInvalid", "401 Unauthorized: invalid API key", 1) },
    }),
    status = "Degraded",
    message = "CredentialsInvalid: 401 Unauthorized: invalid API key",
  },
  {
    name = "immutable field changed",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      conditions = { ready("False", "ImmutableFieldChanged", "spec.email is immutable; recreate the Invitation", 2) },
    }),
    status = "Degraded",
    message = "ImmutableFieldChanged: spec.email is immutable; recreate the Invitation",
  },
  {
    name = "deactivated, reason without message",
    obj = invitation(1, {
      phase = "Deactivated", observedGeneration = 1,
      conditions = { ready("False", "Deactivated", nil, 1) },
    }),
    status = "Degraded",
    message = "Deactivated",
  },
  {
    name = "Ready False without reason or message",
    obj = invitation(1, { observedGeneration = 1, conditions = { { type = "Ready", status = "False" } } }),
    status = "Degraded",
    message = "Invitation is not ready",
  },
  {
    name = "sent, role bindings not created yet (RoleBindingPending)",
    obj = invitation(1, {
      phase = "Sent", observedGeneration = 1,
      roleBindings = {
        { roleName = "EnvironmentAdmin", crnPattern = "crn://confluent.cloud/organization=o/environment=env-abc", state = "Pending" },
      },
      conditions = { ready("False", "RoleBindingPending",
        "1 role binding(s) not created yet: EnvironmentAdmin on crn://confluent.cloud/organization=o/environment=env-abc", 1) },
    }),
    status = "Progressing",
    message = "RoleBindingPending: 1 role binding(s) not created yet",
  },
  {
    name = "accepted, a role binding pending is still Progressing",
    obj = invitation(3, {
      phase = "Accepted", observedGeneration = 3,
      conditions = { ready("False", "RoleBindingPending", "1 role binding(s) not created yet", 3) },
    }),
    status = "Progressing",
    message = "RoleBindingPending",
  },
  {
    name = "sent, a role binding refused (RoleBindingRefused) is Degraded",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      roleBindings = {
        { roleName = "DeveloperRead", crnPattern = "crn://confluent.cloud/organization=o/environment=env-abc/cloud-cluster=lkc-1", state = "Refused", message = "cannot be bound at the cluster scope" },
      },
      conditions = { ready("False", "RoleBindingRefused",
        "Confluent refused 1 role binding(s): DeveloperRead on crn://confluent.cloud/organization=o/environment=env-abc/cloud-cluster=lkc-1: cannot be bound at the cluster scope", 2) },
    }),
    status = "Degraded",
    message = "RoleBindingRefused: Confluent refused 1 role binding(s): DeveloperRead on",
  },
  {
    name = "a binding left to delete (RoleBindingRevocationPending) is Degraded",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      roleBindings = {
        { roleName = "EnvironmentAdmin", crnPattern = "crn://confluent.cloud/organization=o/environment=env-abc", id = "rb-9", state = "Deleting", principal = "User:u-old" },
      },
      conditions = { ready("False", "RoleBindingRevocationPending",
        "1 role binding(s) must be deleted and may still grant access: EnvironmentAdmin on crn://confluent.cloud/organization=o/environment=env-abc (rb-9) of User:u-old", 2) },
    }),
    status = "Degraded",
    message = "RoleBindingRevocationPending: 1 role binding(s) must be deleted and may still grant access",
  },
  {
    name = "every role binding bound, Ready True, is Healthy",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      roleBindings = {
        { roleName = "EnvironmentAdmin", crnPattern = "crn://confluent.cloud/organization=o/environment=env-abc", id = "rb-1", state = "Bound" },
      },
      conditions = { ready("True", "Sent", "invitation i-abc12 sent to jane@example.com", 2) },
    }),
    status = "Healthy",
    message = "Sent",
  },
  {
    name = "a Ready=False reason this script does not know is Degraded, with its message",
    obj = invitation(1, {
      phase = "Sent", observedGeneration = 1,
      conditions = { ready("False", "SomeFutureReason", "something to look at", 1) },
    }),
    status = "Degraded",
    message = "SomeFutureReason: something to look at",
  },
  {
    name = "being deleted (finalizer cleanup)",
    obj = invitation(2, {
      phase = "Sent", observedGeneration = 2,
      conditions = { ready("True", "Sent", "sent", 2) },
    }, { deletionTimestamp = "2024-05-02T10:00:00Z" }),
    status = "Progressing",
    message = "Deleting",
  },
}

local failed = 0
for _, case in ipairs(cases) do
  local ok, result = pcall(health, case.obj)
  local problem = nil
  if not ok then
    problem = "error: " .. tostring(result)
  elseif type(result) ~= "table" then
    problem = "returned " .. type(result) .. ", want a table"
  elseif result.status ~= case.status then
    problem = "status " .. tostring(result.status) .. ", want " .. case.status
      .. " (message: " .. tostring(result.message) .. ")"
  elseif type(result.message) ~= "string"
    or string.find(result.message, case.message, 1, true) == nil then
    problem = "message " .. tostring(result.message) .. ", want it to contain " .. case.message
  end
  if problem == nil then
    print("ok   " .. case.name)
  else
    failed = failed + 1
    print("FAIL " .. case.name .. ": " .. problem)
  end
end

print(string.format("%d cases, %d failed (%s)", #cases, failed, _VERSION))
if failed > 0 then
  os.exit(1)
end
