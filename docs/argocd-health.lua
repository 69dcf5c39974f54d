-- Argo CD health check for aftershock's ChaosExperiment and ChaosRun (aftershock.dev/v1alpha1).
-- Install it for both kinds in argocd-cm (see docs/install.md):
--   resource.customizations.health.aftershock.dev_ChaosExperiment: |
--     <this file>
--   resource.customizations.health.aftershock.dev_ChaosRun: |
--     <this file>
-- Argo CD sets the global `obj` to the live object; the script returns {status, message}.

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local function health(o)
  local status = o.status
  if status == nil then
    return { status = "Progressing", message = "Waiting for the operator to report status" }
  end

  -- a status written for an older spec says nothing about the current one
  local generation = o.metadata and o.metadata.generation
  if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
    return {
      status = "Progressing",
      message = "Waiting for the operator to observe generation " .. tostring(generation),
    }
  end

  if o.kind == "ChaosRun" then
    local phase = status.phase
    if phase == nil or phase == "Pending" or phase == "Injecting" or phase == "Observing" or phase == "Reverting" then
      return { status = "Progressing", message = "Run is " .. (phase or "Pending") }
    end
    if phase == "Completed" then
      local detail = "severity " .. tostring(status.severity or "none")
      if status.verdict == "Passed" then
        return { status = "Healthy", message = "Passed (" .. detail .. ")" }
      end
      return { status = "Degraded", message = "Failed (" .. detail .. ")" }
    end
    if phase == "Skipped" then
      return { status = "Suspended", message = status.message or "Skipped by policy" }
    end
    -- Errored (the chaos could not be carried out) and Aborted
    return { status = "Degraded", message = phase .. ": " .. tostring(status.message or "") }
  end

  -- ChaosExperiment (and anything else following kstatus conditions)
  local stalled = condition(status, "Stalled")
  if is_true(stalled) then
    return { status = "Degraded", message = text(stalled, "Stalled") }
  end
  local suspended = condition(status, "Suspended")
  if is_true(suspended) or (o.spec ~= nil and o.spec.suspend == true) then
    return { status = "Suspended", message = text(suspended, "Suspended") }
  end
  local reconciling = condition(status, "Reconciling")
  if is_true(reconciling) then
    return { status = "Progressing", message = text(reconciling, "Reconciling") }
  end
  local ready = condition(status, "Ready")
  if is_true(ready) then
    return { status = "Healthy", message = text(ready, "Ready") }
  end
  if ready ~= nil and ready.status == "False" then
    return { status = "Degraded", message = text(ready, "Not ready") }
  end
  return { status = "Progressing", message = "Waiting for the Ready condition" }
end

return health(obj)
