-- Argo CD health check for every kadence.dev kind (Dataset, FeatureSet, TrainingRun,
-- ModelVersion, InferenceService, MonitorPolicy, BatchPrediction, ErasureRequest). Register it
-- once per kind in argocd-cm (see argocd/argocd-cm.yaml). Argo CD sets `obj` to the live object.
--
-- The Ready condition is the verdict; status.phase only refines a Ready that is not True:
--   no status yet, or status.observedGeneration behind metadata.generation -> Progressing
--   a phase that waits on a person (paused canary, manual approval)       -> Suspended
--   a phase that is a failure (invalid spec, failed run, rollback)        -> Degraded
--   Ready=True -> Healthy; Ready=False -> Degraded unless the phase is still moving;
--   Ready=Unknown or missing -> Progressing.

local SUSPENDED_PHASES = {
  Paused = true,            -- InferenceService: canary paused at a step
  Suspended = true,
  AwaitingApproval = true,  -- ModelVersion / TrainingRun: promotion waits for a manual approval
}

local DEGRADED_PHASES = {
  Invalid = true,           -- the spec was refused (reason InvalidSpec)
  Failed = true,            -- a Job failed for good
  Degraded = true,
  RolledBack = true,        -- InferenceService: canary analysis failed, traffic went back to stable
  Blocked = true,           -- an upstream object failed validation
}

local MOVING_PHASES = {
  Pending = true, Accepted = true, Running = true, Progressing = true, Promoting = true,
  Ingesting = true, Materializing = true, Training = true, Registering = true,
  Verifying = true, Evaluating = true, Retraining = true,
  Erasing = true,           -- ErasureRequest: its Job is erasing
}

local function find_condition(status, condition_type)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local function health(o)
  local status = o.status
  if status == nil then
    return "Progressing", "Waiting for the Kadence operator to report status"
  end
  local generation = o.metadata and o.metadata.generation
  local observed = status.observedGeneration
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", "Waiting for the Kadence operator to observe generation " .. tostring(generation)
  end

  local ready = find_condition(status, "Ready")
  local phase = status.phase
  if ready ~= nil and ready.status == "True" then
    return "Healthy", describe(ready, phase or "Ready")
  end
  if phase ~= nil and SUSPENDED_PHASES[phase] then
    return "Suspended", describe(ready, phase)
  end
  if phase ~= nil and DEGRADED_PHASES[phase] then
    return "Degraded", describe(ready, phase)
  end
  if ready == nil then
    return "Progressing", "Waiting for the Ready condition"
  end
  if ready.status == "False" then
    if phase ~= nil and MOVING_PHASES[phase] then
      return "Progressing", describe(ready, phase)
    end
    return "Degraded", describe(ready, "Not ready")
  end
  return "Progressing", describe(ready, "Ready is Unknown")
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
