package embedded

// SimulatedCallLength is how long, on the process clock, a simulated call
// lasts before the simulator posts its outcome.
const SimulatedCallLength = simulatedCallLength

// SimulatedOutcomes reports how many call outcomes the voice simulator has
// posted to the webhook path and seen answered. Once it equals the number
// of calls placed, every follow-up those outcomes create exists.
func (l *Local) SimulatedOutcomes() int64 { return l.voice.posted.Load() }
