-- Argo CD health check for specdeploy.io/SpeculativeDeployment.
--
-- Argo CD cannot see the vLLM pods behind a SpeculativeDeployment as its own children's health, so the
-- operator rolls everything into the object's status and this script reads it. Written for Lua 5.1 as Argo CD
-- runs it (gopher-lua, with only the base, table and safe os libraries: no string library, no string methods).
-- Order matters: a stale status says nothing about the current spec, and a rollback outranks Ready, because
-- after one the pods are healthy but they serve the last good revision, not the one in Git.

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
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

local function health(status, message)
  return {status = status, message = message}
end

local status = obj.status
if status == nil then
  return health("Progressing", "Waiting for status")
end

local generation = tonumber(obj.metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  return health("Progressing", "Waiting for the operator to observe generation " .. tostring(generation))
end

local conditions = status.conditions

local rolledBack = find_condition(conditions, "RolledBack")
if rolledBack ~= nil and rolledBack.status == "True" then
  return health("Degraded", describe(rolledBack, "Rolled back"))
end

local degraded = find_condition(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  return health("Degraded", describe(degraded, "Degraded"))
end

local validated = find_condition(conditions, "Validated")
if validated ~= nil and validated.status == "False" and validated.reason == "ValidationFailed" then
  return health("Degraded", describe(validated, "Validation failed"))
end

-- A canary of the current revision still running (issue 13): the pods of the revision in Git are not all serving
-- yet, though the serving revision's are Ready. Promoted: Ready says it; Aborted: RolledBack (above) says it.
local canary = status.canary
local revision = status.revision
if canary ~= nil and (canary.phase == "Starting" or canary.phase == "Analyzing" or canary.phase == "Promoting")
    and (revision == nil or revision.current == nil or canary.revision == revision.current) then
  local words = canary.message
  if words == nil or words == "" then
    words = "Canary " .. tostring(canary.phase)
  end
  return health("Progressing", "Canary " .. tostring(canary.phase) .. ": " .. words)
end

local ready = find_condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  return health("Healthy", describe(ready, "Ready"))
end

return health("Progressing", describe(ready, "Waiting for status"))
