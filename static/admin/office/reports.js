/* placeholder: replaced by the module's console view */
(function () {
  "use strict";
})();
