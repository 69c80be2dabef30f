package httpapi

import (
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// suppressionView is a suppression as the API shows it: empty strings
// become null, times are UTC.
type suppressionView struct {
	Channel         comms.SuppressionChannel `json:"channel"`
	Recipient       string                   `json:"recipient"`
	Reason          comms.SuppressionReason  `json:"reason"`
	Detail          *string                  `json:"detail"`
	CommunicationID *string                  `json:"communication_id"`
	CreatedAt       time.Time                `json:"created_at"`
	CreatedBy       string                   `json:"created_by"`
	Active          bool                     `json:"active"`
	LiftedAt        *time.Time               `json:"lifted_at"`
	LiftedBy        *string                  `json:"lifted_by"`
	Lifts           []liftView               `json:"lifts"`
}

// liftView is one earlier, lifted suppression of the recipient.
type liftView struct {
	Reason          comms.SuppressionReason `json:"reason"`
	Detail          *string                 `json:"detail"`
	CommunicationID *string                 `json:"communication_id"`
	CreatedAt       time.Time               `json:"created_at"`
	CreatedBy       string                  `json:"created_by"`
	LiftedAt        time.Time               `json:"lifted_at"`
	LiftedBy        *string                 `json:"lifted_by"`
}

func suppressionOf(s comms.Suppression) suppressionView {
	v := suppressionView{Channel: s.Channel, Recipient: s.Recipient, Reason: s.Reason, Detail: null(s.Detail),
		CommunicationID: null(s.CommunicationID), CreatedAt: s.CreatedAt.UTC(), CreatedBy: s.CreatedBy,
		Active: s.Active(), LiftedAt: utc(s.LiftedAt), LiftedBy: null(s.LiftedBy), Lifts: make([]liftView, len(s.Lifts))}
	for i, l := range s.Lifts {
		v.Lifts[i] = liftView{Reason: l.Reason, Detail: null(l.Detail), CommunicationID: null(l.CommunicationID),
			CreatedAt: l.CreatedAt.UTC(), CreatedBy: l.CreatedBy, LiftedAt: l.LiftedAt.UTC(), LiftedBy: null(l.LiftedBy)}
	}
	return v
}

func (a *API) listSuppressions(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := contract.ParseSuppressionQuery(q)
	if err != nil {
		return err
	}
	list, next, more, err := a.svc.Suppressions(r.Context(), p, f)
	if err != nil {
		return err
	}
	out := make([]suppressionView, len(list))
	for i, s := range list {
		out[i] = suppressionOf(s)
	}
	return ok(w, r, http.StatusOK, out, map[string]any{"next_cursor": nullable(next), "has_more": more})
}

func (a *API) getSuppression(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	s, err := a.svc.Suppression(r.Context(), p, r.PathValue("channel"), r.PathValue("recipient"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, suppressionOf(s), nil)
}

func (a *API) putSuppression(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	body, err := readBody(w, r, jsonTypes...)
	if err != nil {
		return err
	}
	s, created, err := a.svc.PutSuppression(r.Context(), p, body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return ok(w, r, status, suppressionOf(s), nil)
}

func (a *API) deleteSuppression(w http.ResponseWriter, r *http.Request, p comms.Principal) error {
	s, err := a.svc.LiftSuppression(r.Context(), p, r.PathValue("channel"), r.PathValue("recipient"))
	if err != nil {
		return err
	}
	return ok(w, r, http.StatusOK, suppressionOf(s), nil)
}
