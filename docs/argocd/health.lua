-- Argo CD health check for MilvusBackup and MilvusRestore (backup.milvus.io/v1alpha1).
--
-- The operator writes kstatus conditions (Stalled, Ready, Reconciling) and status.phase
-- (Pending, Running, Completed, Failed). Stalled -> Degraded, Ready -> Healthy, anything
-- still at work or being deleted -> Progressing. Lua 5.1, as Argo CD runs it.
local hs = {status = "Progressing", message = "Waiting for the operator"}

-- Being deleted (deletionPolicy: Delete removes the backup's data first, behind a finalizer):
-- Progressing, whatever the last status said, as Argo CD's own checks answer.
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = hs.message .. " (finalizers: " .. table.concat(obj.metadata.finalizers, ", ") .. ")"
  end
  return hs
end

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function first(...)
  for i = 1, select("#", ...) do
    local value = select(i, ...)
    if value ~= nil and value ~= "" then
      return value
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.phase == nil then
  return hs
end

local generation = obj.metadata ~= nil and obj.metadata.generation or nil
if generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if status.phase == "Failed" or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  hs.message = first(status.message, stalled ~= nil and stalled.message or nil, "Failed")
  return hs
end

local ready = condition(status, "Ready")
if status.phase == "Completed" or (ready ~= nil and ready.status == "True") then
  hs.status = "Healthy"
  hs.message = first(status.message, ready ~= nil and ready.message or nil, "Completed")
  return hs
end

-- Pending or Running: say how far it got
local text = status.phase
if status.progress ~= nil and status.progress.text ~= nil then
  text = text .. " " .. status.progress.text
  if status.progress.summary ~= nil and status.progress.summary ~= "" then
    text = text .. " (" .. status.progress.summary .. ")"
  end
end
if status.message ~= nil and status.message ~= "" then
  text = text .. ": " .. status.message
end
hs.message = text
return hs
